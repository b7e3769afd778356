"""Student/teacher segmentor that runs a pluggable SSL strategy."""
import copy
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmengine.logging import MessageHub, print_log
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.registry import MODELS
from mmseg.utils import (ConfigType, OptConfigType, OptMultiConfig,
                         OptSampleList, SampleList)
from torch import Tensor

from ...evaluation.functional import foreground_dice
from ..ssl_strategies import LabelledBatch, SemiNetworks
from ..utils import num_classes_of, rampup_factor

_NETWORKS = ('student', 'teacher', 'peer')

#: MessageHub key of the first unlabelled sample of the last batch: its weak
#: view and its pseudo-label maps (read by PseudoLabelVisualizationHook).
SNAPSHOT_KEY = 'pseudo_label_snapshot'


@MODELS.register_module()
class SemiBaseSegmentor(BaseSegmentor):
    """Semi-supervised segmentor: a student, its EMA teacher, a strategy.

    One training iteration (``loss``), reading top to bottom::

        loss(multi_batch_inputs, multi_batch_data_samples)
         ├─ loss_by_gt_labels       'sup' branch: student.loss()
         │                          (+ peer.loss() for two-student methods)
         ├─ get_pseudo_labels       no grad, on the weak view 'unsup_teacher'
         │   ├─ expert_outputs        other experts, run once (CPS4: the VLM)
         │   ├─ strategy.teacher_probs  softmax of the teacher(s)
         │   ├─ build_target          labels, soft target, weight map
         │   │                        (CPS4SemiSegmentor: VLM fusion here)
         │   └─ refine_target         optional pseudo_label_refiner, e.g.
         │                            levels put in anatomical order
         └─ loss_by_pseudo_labels   strategy.unsup_loss on the strong
                                    view(s) x unsup_weight x ramp-up(iter)
                                    (+ the 'sup' images and labels when
                                    the strategy uses_labelled, e.g. BCP)

    The strategy sees a :class:`SemiNetworks` view (networks, logits,
    probs, cutmix), never the segmentor. The teacher is a copy of the
    student that changes only through :class:`cps4.engine.EMATeacherHook`.
    All weights, thresholds and ramp-ups live in ``semi_train_cfg``:

    - ``sup_weight`` (1.0): weight of the supervised loss;
    - ``unsup_weight`` (1.0): weight of the unsupervised loss;
    - ``rampup_iters`` (0): sigmoid ramp-up of ``unsup_weight``;
    - ``pseudo_threshold`` (0.0): confidence a pixel needs to enter the
      unsupervised loss (FixMatch/UniMatch use 0.95);
    - ``cutmix_prob`` (0.0): probability of CutMix per strong view;
    - ``log_pseudo_quality`` (True): when unlabelled samples carry a hidden
      ``gt_sem_seg`` (synthetic and benchmark data), log the Dice of the
      pseudo labels against it as ``pl_dice_*`` (never used for training).

    Each iteration also publishes the first unlabelled sample's weak view
    and pseudo-label maps in the MessageHub under :data:`SNAPSHOT_KEY` (not
    saved in checkpoints) for :class:`PseudoLabelVisualizationHook`.

    ``semi_test_cfg.predict_on`` ('teacher' or 'student') chooses the
    network used by ``predict`` (validation, test, inference).

    ``pseudo_label_refiner`` (e.g. ``dict(type='AnatomicalOrderRefiner')``)
    rewrites every target after :meth:`build_target`: relabelled pixels get
    the new label (and a one-hot soft target), pixels it rejects weight 0.
    Its classes come from the training dataset (:meth:`check_classes`,
    called by ``NumClassCheckHook``).

    Checkpoints hold ``student.*``, ``teacher.*`` (and ``peer.*``); loading
    a plain segmentor checkpoint fills every network with it.

    Args:
        segmentor (dict): Config of the mmseg segmentor used for student,
            teacher (and peer).
        ssl_strategy (dict): Config of a registered strategy, e.g.
            ``dict(type='FixMatch')``.
        semi_train_cfg (dict, optional): See above.
        semi_test_cfg (dict, optional): See above.
        pseudo_label_refiner (dict, optional): Config of a refiner of the
            pseudo labels, see above. Defaults to None.
        data_preprocessor (dict, optional): Usually
            ``MultiBranchDataPreprocessor``.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 segmentor: ConfigType,
                 ssl_strategy: ConfigType = dict(type='MeanTeacher'),
                 semi_train_cfg: OptConfigType = None,
                 semi_test_cfg: OptConfigType = None,
                 pseudo_label_refiner: OptConfigType = None,
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
        self.num_classes = num_classes_of(self.student)
        self.teacher.requires_grad_(False)
        self.refiner = (MODELS.build(pseudo_label_refiner)
                        if pseudo_label_refiner else None)

    def check_classes(self, classes) -> None:
        """Hand the dataset's class names to the pseudo-label refiner."""
        if self.refiner is not None:
            self.refiner.set_classes(classes)

    @property
    def networks(self) -> SemiNetworks:
        """The view of the networks that the strategy works on."""
        return SemiNetworks(
            student=self.student,
            teacher=self.teacher,
            peer=getattr(self, 'peer', None),
            cutmix_prob=self.semi_train_cfg['cutmix_prob'])

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
            logged statistics (``unsup_weight``, ``pl_*``).
        """
        losses = dict()
        if 'sup' in multi_batch_inputs:
            losses.update(
                self.loss_by_gt_labels(multi_batch_inputs['sup'],
                                       multi_batch_data_samples['sup']))
        if (self.strategy.uses_unlabelled
                and 'unsup_teacher' in multi_batch_inputs):
            weak = multi_batch_inputs['unsup_teacher']
            strong = self._strong_views(multi_batch_inputs)
            targets, log = self.get_pseudo_labels(
                weak, multi_batch_data_samples['unsup_teacher'])
            labelled = self._labelled_batch(multi_batch_inputs,
                                            multi_batch_data_samples)
            losses.update(
                self.loss_by_pseudo_labels(strong, targets, weak, labelled))
            losses.update(
                {k: v for k, v in log.items() if not torch.isnan(v)})
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

    @torch.no_grad()
    def get_pseudo_labels(self, weak_inputs: Tensor,
                          weak_samples: SampleList
                          ) -> Tuple[List[dict], Dict[str, Tensor]]:
        """Targets for the strategy from the weak view, without gradient.

        Runs every expert once: :meth:`expert_outputs` (nothing here, the
        VLM under CPS4) and the strategy's teacher prediction(s), then
        :meth:`build_target` per teacher map. Logs and publishes the first
        target only.

        Args:
            weak_inputs (Tensor): The weak view (B, C, H, W).
            weak_samples (list[SegDataSample]): Its samples; a hidden
                ``gt_sem_seg`` is read for logging only.

        Returns:
            tuple[list[dict], dict]: One target ``{probs, labels, weight}``
            per network the strategy trains, and the log variables
            (``pl_*``).
        """
        experts = self.expert_outputs(weak_inputs)
        targets, log = [], {}
        teacher_probs = self.strategy.teacher_probs(self.networks,
                                                    weak_inputs)
        for i, probs in enumerate(teacher_probs):
            target, maps, extra_log = self.build_target(probs, experts)
            if self.refiner is not None:
                target, maps = self.refine_target(target, maps)
            targets.append(target)
            if i == 0:
                gt = self._hidden_gt(weak_samples, target['labels'].shape[1:])
                log = self.pseudo_quality(maps, target, gt)
                log.update(extra_log)
                self._publish_snapshot(weak_inputs, maps, target, gt)
        return targets, {k: v.detach() for k, v in log.items()}

    def expert_outputs(self, weak_inputs: Tensor) -> Any:
        """Predictions of experts besides the teacher on the weak view.

        Called once per batch by :meth:`get_pseudo_labels` and handed to
        every :meth:`build_target` call. None here; subclasses return e.g.
        the VLM's maps.
        """
        return None

    def build_target(self, probs: Tensor, experts: Any
                     ) -> Tuple[dict, Dict[str, Tensor], Dict[str, Tensor]]:
        """Pseudo labels and confidence mask from a softmax map.

        Args:
            probs (Tensor): (B, K, H, W) teacher predictions on the weak
                view.
            experts: What :meth:`expert_outputs` returned (unused here).

        Returns:
            tuple[dict, dict, dict]: The target ``{probs, labels, weight}``,
            the named label maps to log and draw (``teacher``), and extra
            log variables (none here).
        """
        conf, labels = probs.max(1)
        return self._target(probs, labels, conf), dict(teacher=labels), {}

    def refine_target(self, target: dict, maps: Dict[str, Tensor]
                      ) -> Tuple[dict, Dict[str, Tensor]]:
        """Apply the pseudo-label refiner to a target.

        Relabelled pixels take the refiner's label and a one-hot soft
        target; the refiner's weight multiplies the target's. The refined
        map is logged and drawn as ``refined``.
        """
        labels, keep = self.refiner(target['probs'])
        changed = labels != target['labels']
        one_hot = F.one_hot(labels, target['probs'].shape[1]).permute(
            0, 3, 1, 2).to(target['probs'].dtype)
        probs = torch.where(changed.unsqueeze(1), one_hot, target['probs'])
        target = dict(target, probs=probs, labels=labels,
                      weight=target['weight'] * keep)
        return target, dict(maps, refined=labels)

    def loss_by_pseudo_labels(
            self,
            strong_inputs: List[Tensor],
            targets: List[dict],
            weak_inputs: Tensor,
            labelled: Optional[LabelledBatch] = None) -> Dict[str, Tensor]:
        """Unsupervised loss of the strategy, weighted and ramped up."""
        extra = dict(labelled=labelled) if self.strategy.uses_labelled else {}
        raw = self.strategy.unsup_loss(self.networks, strong_inputs,
                                       targets, weak_inputs, **extra)
        weight = self.semi_train_cfg['unsup_weight'] * rampup_factor(
            self.semi_train_cfg['rampup_iters'])
        losses = {k: weight * v for k, v in raw.items()}
        losses['unsup_weight'] = torch.tensor(
            weight, device=weak_inputs.device)
        return losses

    def _labelled_batch(self, multi_batch_inputs: Dict[str, Tensor],
                        multi_batch_data_samples: Dict[str, SampleList]
                        ) -> Optional[LabelledBatch]:
        """The ``sup`` images and labels, for strategies that use them."""
        if not self.strategy.uses_labelled:
            return None
        if 'sup' not in multi_batch_inputs:
            raise KeyError(
                f'{type(self.strategy).__name__} mixes labelled into '
                "unlabelled images and needs the 'sup' branch in every "
                'batch; the train dataloader must give labelled slices too.')
        labels = torch.stack([
            s.gt_sem_seg.data.squeeze(0)
            for s in multi_batch_data_samples['sup']
        ]).long()
        return LabelledBatch(multi_batch_inputs['sup'], labels)

    def _strong_views(self, multi_batch_inputs: Dict[str, Tensor]
                      ) -> List[Tensor]:
        missing = [b for b in self.strategy.strong_branches
                   if b not in multi_batch_inputs]
        if missing:
            raise KeyError(
                f'{type(self.strategy).__name__} needs the unlabelled '
                f'branch(es) {missing}; add them to the MultiBranch '
                'transform of the unlabelled pipeline.')
        return [multi_batch_inputs[b] for b in self.strategy.strong_branches]

    def _target(self,
                probs: Tensor,
                labels: Tensor,
                conf: Tensor,
                valid: Optional[Tensor] = None) -> dict:
        keep = conf >= self.semi_train_cfg['pseudo_threshold']
        if valid is not None:
            keep = keep & valid
        return dict(probs=probs, labels=labels, weight=keep.float())

    # ------------------------------------------------------------------
    # pseudo-label diagnostics (logging and pictures only)
    # ------------------------------------------------------------------
    def pseudo_quality(self, labels: Dict[str, Tensor], target: dict,
                       gt: Optional[Tensor]) -> Dict[str, Tensor]:
        """Log variables on the pseudo labels of one batch.

        ``pl_mask_ratio`` is the share of pixels that pass the threshold.
        With a hidden ground truth, ``pl_dice_<name>`` is the Dice of each
        label map in ``labels`` over all pixels, and ``pl_dice_masked`` the
        Dice of the final target over the pixels it keeps.

        Args:
            labels (dict[str, Tensor]): Named label maps (B, H, W).
            target (dict): The final target (``labels``, ``weight``).
            gt (Tensor, optional): Hidden ground truth (B, H, W).

        Returns:
            dict[str, Tensor]: The log variables.
        """
        log = dict(pl_mask_ratio=target['weight'].mean())
        if gt is None:
            return log

        def dice(pred: Tensor, truth: Tensor) -> Tensor:
            value = foreground_dice(pred.cpu().numpy(), truth.cpu().numpy(),
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

    @staticmethod
    def _publish_snapshot(weak_inputs: Tensor, maps: Dict[str, Tensor],
                          target: dict, gt: Optional[Tensor]) -> None:
        MessageHub.get_current_instance().update_info(
            SNAPSHOT_KEY,
            dict(
                image=weak_inputs[0].detach(),
                maps={k: v[0].detach() for k, v in maps.items()},
                target=target['labels'][0].detach(),
                valid=target['weight'][0].detach() > 0,
                gt=None if gt is None else gt[0].detach()),
            resumed=False)

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
