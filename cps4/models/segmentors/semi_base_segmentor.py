"""Student/teacher segmentor that runs a pluggable SSL strategy."""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmengine.logging import print_log
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import (ConfigType, OptConfigType, OptMultiConfig,
                         OptSampleList, SampleList)
from torch import Tensor

from ...evaluation.functional import foreground_dice
from ..utils import cutmix, rampup_factor

_NETWORKS = ('student', 'teacher', 'peer')


@MODELS.register_module()
class SemiBaseSegmentor(BaseSegmentor):
    """Semi-supervised segmentor: a student, its EMA teacher, a strategy.

    Call graph of one training iteration (``loss``), reading top to bottom::

        loss(multi_batch_inputs, multi_batch_data_samples)
         ├─ loss_by_gt_labels         'sup' branch: student.loss()
         │                            (+ peer.loss() for two-student methods)
         └─ loss_by_pseudo_labels     unlabelled branches
             ├─ strategy.teacher_probs   softmax on 'unsup_teacher' (no grad)
             ├─ make_targets             argmax, confidence >= threshold
             │                           (CPS4SemiSegmentor: VLM fusion here)
             ├─ strategy.unsup_loss      strong view(s) 'unsup_student*'
             └─ x unsup_weight x ramp-up(iter)

    The teacher is a copy of the student that changes only through
    :class:`cps4.engine.EMATeacherHook`. All weights, thresholds and
    ramp-ups live in ``semi_train_cfg``:

    - ``sup_weight`` (1.0): weight of the supervised loss;
    - ``unsup_weight`` (1.0): weight of the unsupervised loss;
    - ``rampup_iters`` (0): sigmoid ramp-up of ``unsup_weight``;
    - ``pseudo_threshold`` (0.0): confidence a pixel needs to enter the
      unsupervised loss (FixMatch/UniMatch use 0.95);
    - ``cutmix_prob`` (0.0): probability of CutMix per strong view;
    - ``log_pseudo_quality`` (True): when unlabelled samples carry a hidden
      ``gt_sem_seg`` (synthetic and benchmark data), log the Dice of the
      pseudo labels against it as ``pl_dice_*`` (never used for training).

    ``semi_test_cfg.predict_on`` ('teacher' or 'student') chooses the
    network used by ``predict`` (validation, test, inference).

    Checkpoints hold ``student.*``, ``teacher.*`` (and ``peer.*``); loading
    a plain segmentor checkpoint fills every network with it.

    Args:
        segmentor (dict): Config of the mmseg segmentor used for student,
            teacher (and peer).
        ssl_strategy (dict): Config of a registered strategy, e.g.
            ``dict(type='FixMatch')``.
        semi_train_cfg (dict, optional): See above.
        semi_test_cfg (dict, optional): See above.
        data_preprocessor (dict, optional): Usually
            ``MultiBranchDataPreprocessor``.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 segmentor: ConfigType,
                 ssl_strategy: ConfigType = dict(type='MeanTeacher'),
                 semi_train_cfg: OptConfigType = None,
                 semi_test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        segmentor = ConfigDict(copy.deepcopy(dict(segmentor)))
        # the outer segmentor normalises the batch; nested preprocessors
        # would do it a second time
        segmentor.pop('data_preprocessor', None)
        self.student = MODELS.build(segmentor)
        self.teacher = MODELS.build(segmentor)
        self.strategy = MODELS.build(ssl_strategy)
        if self.strategy.needs_peer:
            self.peer = MODELS.build(segmentor)
        self.semi_train_cfg = dict(
            sup_weight=1.0,
            unsup_weight=1.0,
            rampup_iters=0,
            pseudo_threshold=0.0,
            cutmix_prob=0.0,
            log_pseudo_quality=True)
        unknown = set(semi_train_cfg or {}) - set(self.semi_train_cfg)
        if unknown:
            raise KeyError(f'semi_train_cfg: unknown key(s) {sorted(unknown)};'
                           f' known: {sorted(self.semi_train_cfg)}')
        self.semi_train_cfg.update(semi_train_cfg or {})
        self.semi_test_cfg = dict(predict_on='teacher')
        self.semi_test_cfg.update(semi_test_cfg or {})
        if self.semi_test_cfg['predict_on'] not in ('teacher', 'student'):
            raise ValueError("semi_test_cfg.predict_on must be 'teacher' or "
                             f"'student', got "
                             f"{self.semi_test_cfg['predict_on']!r}")
        self.num_classes = self._num_classes(self.student)
        self.teacher.requires_grad_(False)
        #: First unlabelled sample of the last batch: its weak view and its
        #: pseudo-label maps (read by PseudoLabelVisualizationHook).
        self.pseudo_label_snapshot: Optional[dict] = None
        self._last_pseudo_maps: Optional[dict] = None

    # ------------------------------------------------------------------
    # helpers the strategies call
    # ------------------------------------------------------------------
    @staticmethod
    def _num_classes(net: nn.Module) -> int:
        head = getattr(net, 'decode_head', None)
        if head is not None:
            return int(head.num_classes)
        if hasattr(net, 'num_classes'):
            return int(net.num_classes)
        raise AttributeError(f'{type(net).__name__} has neither a '
                             'decode_head nor num_classes.')

    def logits(self,
               net: nn.Module,
               inputs: Tensor,
               feature_dropout: float = 0.0) -> Tensor:
        """Class logits of ``net`` at the input size.

        Args:
            net (nn.Module): ``self.student``, ``self.teacher`` or
                ``self.peer``.
            inputs (Tensor): Normalised images (B, C, H, W).
            feature_dropout (float): Channel dropout on every encoder
                feature before the decode head (UniMatch's feature
                perturbation); needs a segmentor with ``decode_head``.

        Returns:
            Tensor: (B, K, H, W) logits, in float32 also under mixed
            precision (they feed the losses and the pseudo labels).
        """
        head = getattr(net, 'decode_head', None)
        if head is not None:
            feats = net.extract_feat(inputs)
            if feature_dropout > 0:
                feats = [
                    F.dropout2d(f, feature_dropout, training=True)
                    for f in feats
                ]
            out = head.forward(feats)
        elif feature_dropout > 0:
            raise TypeError(
                f'feature_dropout needs a segmentor with a decode_head; '
                f'{type(net).__name__} has none.')
        else:
            out = net._forward(inputs)
        return resize(out.float(), size=inputs.shape[2:], mode='bilinear',
                      align_corners=False)

    def predict_probs(self,
                      net: nn.Module,
                      inputs: Tensor,
                      eval_mode: bool = True) -> Tensor:
        """Softmax of ``net`` on ``inputs`` without gradient.

        Args:
            net (nn.Module): The predicting network.
            inputs (Tensor): Normalised images (B, C, H, W).
            eval_mode (bool): Run ``net`` in eval mode (batch-norm running
                statistics, no dropout), as for the EMA teacher; the two
                students of CPS predict in training mode.

        Returns:
            Tensor: (B, K, H, W) probabilities.
        """
        was_training = net.training
        if eval_mode:
            net.eval()
        with torch.no_grad():
            probs = self.logits(net, inputs).softmax(1)
        net.train(was_training)
        return probs

    def cutmix(self, inputs: Tensor,
               targets: Sequence[dict]) -> Tuple[Tensor, List[dict]]:
        """CutMix with ``semi_train_cfg.cutmix_prob`` (see
        :func:`cps4.models.utils.cutmix`)."""
        return cutmix(inputs, targets, self.semi_train_cfg['cutmix_prob'])

    def make_targets(self, probs: Tensor, weak_inputs: Tensor,
                     weak_samples: SampleList) -> Tuple[dict, dict]:
        """Pseudo labels and confidence mask from a softmax map.

        Args:
            probs (Tensor): (B, K, H, W) predictions on the weak view.
            weak_inputs (Tensor): The weak view (unused here; subclasses
                use it, e.g. to run the stage-1 VLM).
            weak_samples (list[SegDataSample]): Samples of the weak view;
                a hidden ``gt_sem_seg`` is read for logging only.

        Returns:
            tuple[dict, dict]: The target ``{probs, labels, weight}`` and
            the log variables (``pl_*``).
        """
        conf, labels = probs.max(1)
        target = self._target(probs, labels, conf)
        log = self.pseudo_quality(dict(teacher=labels), target, weak_samples)
        return target, log

    def pseudo_quality(self, labels: Dict[str, Tensor], target: dict,
                       weak_samples: SampleList) -> Dict[str, Tensor]:
        """Log variables on the pseudo labels of one batch.

        ``pl_mask_ratio`` is the share of pixels that pass the threshold.
        With a hidden ground truth, ``pl_dice_<name>`` is the Dice of each
        label map in ``labels`` over all pixels, and ``pl_dice_masked`` the
        Dice of the final target over the pixels it keeps.

        Args:
            labels (dict[str, Tensor]): Named label maps (B, H, W).
            target (dict): The final target (``labels``, ``weight``).
            weak_samples (list[SegDataSample]): Samples of the weak view.

        Returns:
            dict[str, Tensor]: The log variables.
        """
        log = dict(pl_mask_ratio=target['weight'].mean())
        gt = self._hidden_gt(weak_samples, target['labels'].shape[1:])
        self._last_pseudo_maps = dict(
            maps={k: v[0].detach() for k, v in labels.items()},
            target=target['labels'][0].detach(),
            valid=target['weight'][0].detach() > 0,
            gt=None if gt is None else gt[0].detach())
        if gt is None:
            return log

        def dice(pred: Tensor, truth: Tensor) -> Tensor:
            value = foreground_dice(pred.detach().cpu().numpy(),
                                    truth.detach().cpu().numpy(),
                                    self.num_classes)
            return torch.tensor(value, device=pred.device)

        for name, lab in labels.items():
            log[f'pl_dice_{name}'] = dice(lab, gt)
        keep = target['weight'] > 0
        ignore = torch.full_like(gt, 255)
        log['pl_dice_masked'] = dice(
            torch.where(keep, target['labels'], ignore),
            torch.where(keep, gt, ignore))
        return log

    def _target(self,
                probs: Tensor,
                labels: Tensor,
                conf: Tensor,
                valid: Optional[Tensor] = None) -> dict:
        keep = conf >= self.semi_train_cfg['pseudo_threshold']
        if valid is not None:
            keep = keep & valid
        return dict(probs=probs, labels=labels, weight=keep.float())

    def _hidden_gt(self, samples: SampleList,
                   size) -> Optional[Tensor]:
        if not self.semi_train_cfg['log_pseudo_quality']:
            return None
        if not samples or not all('gt_sem_seg' in s for s in samples):
            return None
        gt = torch.stack([s.gt_sem_seg.data.squeeze(0) for s in samples])
        if tuple(gt.shape[1:]) != tuple(size):
            return None
        return gt.long()

    # ------------------------------------------------------------------
    # training
    # ------------------------------------------------------------------
    def loss(self, multi_batch_inputs: Dict[str, Tensor],
             multi_batch_data_samples: Dict[str, SampleList]) -> dict:
        """Supervised plus weighted unsupervised losses of one batch.

        Args:
            multi_batch_inputs (dict[str, Tensor]): Inputs per branch:
                ``sup``, ``unsup_teacher`` and the strategy's strong
                branches.
            multi_batch_data_samples (dict[str, list]): Samples per branch.

        Returns:
            dict[str, Tensor]: Losses (``sup_*``, ``loss_unsup_*``) and
            logged statistics (``pl_*``, ``unsup_weight``).
        """
        losses = dict()
        if 'sup' in multi_batch_inputs:
            losses.update(
                self.loss_by_gt_labels(multi_batch_inputs['sup'],
                                       multi_batch_data_samples['sup']))
        if (self.strategy.uses_unlabelled
                and 'unsup_teacher' in multi_batch_inputs):
            losses.update(
                self.loss_by_pseudo_labels(multi_batch_inputs,
                                           multi_batch_data_samples))
        if not losses:
            raise RuntimeError(
                'SemiBaseSegmentor.loss got no branch it can use: '
                f'{sorted(multi_batch_inputs)}; the train pipeline must end '
                "with MultiBranch producing 'sup' and/or 'unsup_*' views.")
        return losses

    def loss_by_gt_labels(self, inputs: Tensor,
                          data_samples: SampleList) -> dict:
        """Supervised loss of the student (and peer) on labelled data."""
        w = self.semi_train_cfg['sup_weight']
        nets = [('sup', self.student)]
        if self.strategy.needs_peer:
            nets.append(('sup_peer', self.peer))
        losses = dict()
        for name, net in nets:
            for k, v in net.loss(inputs, data_samples).items():
                if 'loss' in k:
                    v = w * v if torch.is_tensor(v) else [w * x for x in v]
                losses[f'{name}_{k}'] = v
        return losses

    def loss_by_pseudo_labels(self, multi_batch_inputs: Dict[str, Tensor],
                              multi_batch_data_samples: Dict[str, SampleList]
                              ) -> dict:
        """Unsupervised loss of the strategy, weighted and ramped up."""
        weak = multi_batch_inputs['unsup_teacher']
        weak_samples = multi_batch_data_samples['unsup_teacher']
        missing = [b for b in self.strategy.strong_branches
                   if b not in multi_batch_inputs]
        if missing:
            raise KeyError(
                f'{type(self.strategy).__name__} needs the unlabelled '
                f'branch(es) {missing}; add them to the MultiBranch '
                'transform of the unlabelled pipeline.')
        strong = [multi_batch_inputs[b] for b in self.strategy.strong_branches]
        targets, log = [], {}
        for i, probs in enumerate(self.strategy.teacher_probs(self, weak)):
            target, target_log = self.make_targets(probs, weak, weak_samples)
            targets.append(target)
            if i == 0:
                log = target_log
                if self._last_pseudo_maps is not None:
                    self.pseudo_label_snapshot = dict(
                        self._last_pseudo_maps, image=weak[0].detach())
        raw = self.strategy.unsup_loss(self, strong, targets, weak)
        weight = self.semi_train_cfg['unsup_weight'] * rampup_factor(
            self.semi_train_cfg['rampup_iters'])
        losses = {k: weight * v for k, v in raw.items()}
        losses['unsup_weight'] = torch.tensor(weight, device=weak.device)
        losses.update(
            {k: v.detach() for k, v in log.items() if not torch.isnan(v)})
        return losses

    # ------------------------------------------------------------------
    # inference and the BaseSegmentor interface
    # ------------------------------------------------------------------
    @property
    def predictor(self) -> nn.Module:
        """The network chosen by ``semi_test_cfg.predict_on``."""
        return getattr(self, self.semi_test_cfg['predict_on'])

    def predict(self,
                inputs: Tensor,
                data_samples: OptSampleList = None) -> SampleList:
        """Predict with the network chosen by ``semi_test_cfg``."""
        return self.predictor.predict(inputs, data_samples)

    def _forward(self,
                 inputs: Tensor,
                 data_samples: OptSampleList = None) -> Tensor:
        return self.predictor._forward(inputs, data_samples)

    def extract_feat(self, inputs: Tensor) -> List[Tensor]:
        return self.predictor.extract_feat(inputs)

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        return self.predictor.encode_decode(inputs, batch_img_metas)

    def train(self, mode: bool = True) -> 'SemiBaseSegmentor':
        """Set training mode; the teacher always stays in eval mode."""
        super().train(mode)
        self.teacher.eval()
        return self

    def _load_from_state_dict(self, state_dict: dict, prefix: str,
                              local_metadata: dict, strict: bool,
                              missing_keys: list, unexpected_keys: list,
                              error_msgs: list) -> None:
        """Fill every network from a plain (single-network) checkpoint."""
        own = [k for k in state_dict if k.startswith(prefix)]
        if own and not any(k[len(prefix):].split('.', 1)[0] in _NETWORKS
                           for k in own):
            nets = [n for n in _NETWORKS if hasattr(self, n)]
            print_log(f'{type(self).__name__}: checkpoint holds a single '
                      f'network; loading it into {nets}.', logger='current')
            for k in own:
                rest = k[len(prefix):]
                value = state_dict.pop(k)
                for net in nets:
                    state_dict[f'{prefix}{net}.{rest}'] = value
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)
