"""CPS4 stage 2: any SSL strategy with VLM-cleaned pseudo labels."""
import copy
import logging
import os.path as osp
from typing import Dict, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor

from ..utils import current_iter
from .semi_base_segmentor import SemiBaseSegmentor


@MODELS.register_module()
class CPS4SemiSegmentor(SemiBaseSegmentor):
    """Semi-supervised segmentor whose pseudo labels the stage-1 VLM cleans.

    Its two steps of :meth:`SemiBaseSegmentor.get_pseudo_labels`::

        expert_outputs(weak_inputs)        once per batch, no grad:
         └─ vlm.unified_map(weak_inputs)   frozen stage-1 model: class
                                           maps B_k, unified labels
        build_target(teacher_probs, vlm outputs)
         ├─ fusion(q_t, B, labels_v)       registered rule -> q, confidence
         └─ labels = argmax q, weight = 1[confidence >= pseudo_threshold]

    The SSL strategy is a config switch (``ssl_strategy``), as is the
    fusion rule (``fusion``). The VLM is frozen, always in eval mode, and
    its weights are stored in this model's checkpoints, so a stage-2
    checkpoint is self-contained.

    With ``vlm_adabn_iters`` > 0 the VLM's BatchNorm statistics, estimated
    in stage 1 on the labelled slices only, are re-estimated on the weak
    unlabelled views of the first ``vlm_adabn_iters`` iterations (AdaBN:
    reset at iteration 0, then a cumulative average; the weights stay
    frozen); its outputs always come from eval mode with the statistics
    so far. The adapted statistics are saved with the model, so a resumed
    run continues the average.

    Args:
        segmentor (dict): The student/teacher segmentor config.
        vlm (dict): The stage-1 model dict (``type='CPS4VLM'``, usually
            taken from the stage-1 model ``_base_`` file) with
            ``init_cfg=dict(type='Pretrained', checkpoint=PATH)``. Without
            a checkpoint the VLM stays untrained (tests, or loading a
            stage-2 checkpoint that holds it). A ``data_preprocessor`` key
            is dropped after checking that its mean/std match this
            model's.
        fusion (dict): Config of a fusion rule from
            :mod:`cps4.models.pseudo_label`. Defaults to ProductFusion.
        vlm_adabn_iters (int): Iterations whose unlabelled views
            re-estimate the VLM's BatchNorm statistics (see above); 0
            keeps the stage-1 statistics. Defaults to 0.
        ssl_strategy, semi_train_cfg, semi_test_cfg, pseudo_label_refiner,
        data_preprocessor, init_cfg: As in :class:`SemiBaseSegmentor`.
    """

    def __init__(self,
                 segmentor: ConfigType,
                 vlm: ConfigType,
                 fusion: ConfigType = dict(type='ProductFusion'),
                 ssl_strategy: ConfigType = dict(type='MeanTeacher'),
                 semi_train_cfg: OptConfigType = None,
                 semi_test_cfg: OptConfigType = None,
                 pseudo_label_refiner: OptConfigType = None,
                 vlm_adabn_iters: int = 0,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            segmentor=segmentor,
            ssl_strategy=ssl_strategy,
            semi_train_cfg=semi_train_cfg,
            semi_test_cfg=semi_test_cfg,
            pseudo_label_refiner=pseudo_label_refiner,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.vlm = self._build_vlm(copy.deepcopy(dict(vlm)))
        self.fusion = MODELS.build(fusion)
        if vlm_adabn_iters < 0:
            raise ValueError(f'vlm_adabn_iters must be >= 0, got '
                             f'{vlm_adabn_iters}')
        self.vlm_adabn_iters = int(vlm_adabn_iters)

    def _build_vlm(self, vlm: dict) -> nn.Module:
        if 'config' in vlm or 'checkpoint' in vlm:
            raise KeyError(
                'CPS4SemiSegmentor.vlm takes the stage-1 model dict itself '
                "(type='CPS4VLM', ...) with its checkpoint in init_cfg=dict("
                "type='Pretrained', checkpoint=...); the keys `config` and "
                '`checkpoint` are not supported. Base the config on the '
                'stage-1 model file and pass --cfg-options '
                'model.vlm.init_cfg.checkpoint=WORK_DIR/iter_N.pth.')
        self._check_normalisation(vlm.pop('data_preprocessor', None))
        init_cfg = vlm.get('init_cfg')
        #: Path of the stage-1 checkpoint that init_weights() loads.
        self.vlm_checkpoint = None
        if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained':
            self.vlm_checkpoint = init_cfg.get('checkpoint')
            if self.vlm_checkpoint is None:
                # no checkpoint: an untrained VLM (tests, or a stage-2
                # checkpoint that holds the VLM is loaded afterwards)
                vlm.pop('init_cfg')
            elif not osp.isfile(self.vlm_checkpoint):
                raise FileNotFoundError(
                    f'stage-1 checkpoint {self.vlm_checkpoint} not found; '
                    'train stage 1 first (tools/train.py '
                    'configs/cps4/cps4-vlm_*.py) and set '
                    'model.vlm.init_cfg.checkpoint=WORK_DIR/iter_N.pth.')
        net = MODELS.build(vlm)
        if not hasattr(net, 'unified_map'):
            raise TypeError(f'{type(net).__name__} has no unified_map(); the '
                            'stage-1 model must be a CPS4VLM.')
        if int(net.num_classes) != self.num_classes:
            raise ValueError(
                f'the stage-1 VLM predicts {net.num_classes} classes, the '
                f'student {self.num_classes}; train stage 1 on the same '
                'dataset (same classes) as stage 2.')
        net.requires_grad_(False)
        net.eval()
        return net

    def init_weights(self) -> None:
        """Initialise the networks; the VLM loads its ``Pretrained``
        checkpoint.

        The VLM is initialised under a forked random state: its random
        initialisation is replaced by the checkpoint, and forking keeps the
        random stream of the students (initialisation, CutMix, dropout) the
        same as without a VLM.
        """
        if self.vlm_checkpoint is None:
            print_log(
                'CPS4SemiSegmentor: model.vlm.init_cfg has no checkpoint, so '
                'the VLM is untrained and its maps are noise; pass '
                '--cfg-options model.vlm.init_cfg.checkpoint='
                'STAGE1_WORK_DIR/iter_N.pth.',
                logger='current',
                level=logging.WARNING)
        with torch.random.fork_rng(devices=[]):
            self.vlm.init_weights()
        super().init_weights()

    def _check_normalisation(self, vlm_pre: Optional[dict]) -> None:
        """The VLM sees the student's normalised inputs: mean/std must agree."""
        if vlm_pre is None:
            return
        ours = getattr(self.data_preprocessor, 'data_preprocessor',
                       self.data_preprocessor)
        if not hasattr(ours, 'mean') or getattr(ours, 'mean') is None:
            return
        for key in ('mean', 'std'):
            theirs = vlm_pre.get(key)
            if theirs is None:
                continue
            mine = getattr(ours, key).flatten().cpu().numpy()
            if mine.shape != np.asarray(theirs).shape or not np.allclose(
                    mine, np.asarray(theirs, dtype=float)):
                raise ValueError(
                    f'stage-1 VLM normalises with {key}={list(theirs)}, the '
                    f'stage-2 data preprocessor with {key}={mine.tolist()}; '
                    'they must match because the VLM reads the same tensors.')

    def check_classes(self, classes) -> None:
        """Raise when the VLM's class prompts do not match the dataset;
        hand the classes to the pseudo-label refiner."""
        super().check_classes(classes)
        self.vlm.check_classes(classes)

    def train(self, mode: bool = True) -> 'CPS4SemiSegmentor':
        """Set training mode; teacher and VLM always stay in eval mode."""
        super().train(mode)
        if hasattr(self, 'vlm'):
            self.vlm.eval()
        return self

    def expert_outputs(self, weak_inputs: Tensor
                       ) -> Tuple[Tensor, Tensor, Tensor]:
        """The VLM's unified labels, class maps and confidence on the weak
        view (run once per batch, also for two-student strategies)."""
        it = current_iter() or 0
        if self.training and it < self.vlm_adabn_iters:
            self.adapt_vlm_statistics(weak_inputs, reset=it == 0)
        return self.vlm.unified_map(weak_inputs)

    @torch.no_grad()
    def adapt_vlm_statistics(self, inputs: Tensor, reset: bool) -> None:
        """Fold the batch statistics of ``inputs`` into the running
        statistics of every BatchNorm layer of the VLM (a cumulative
        average; ``reset`` starts it afresh). Weights are not touched and
        the VLM is back in eval mode afterwards."""
        norms = [m for m in self.vlm.modules()
                 if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        for m in norms:
            if reset:
                m.reset_running_stats()
            m.momentum = None  # cumulative moving average
            m.train()
        try:
            self.vlm._run(inputs)
        finally:
            for m in norms:
                m.eval()

    def build_target(self, probs: Tensor,
                     experts: Tuple[Tensor, Tensor, Tensor]
                     ) -> Tuple[dict, Dict[str, Tensor], Dict[str, Tensor]]:
        """Fuse the teacher's probabilities with the VLM's class maps.

        Args:
            probs (Tensor): (B, K, H, W) teacher predictions.
            experts (tuple[Tensor]): :meth:`expert_outputs`.

        Returns:
            tuple[dict, dict, dict]: The fused target ``{probs, labels,
            weight}``, the label maps ``teacher``, ``vlm`` and ``fused``,
            and ``pl_agreement`` (share of pixels where teacher and VLM
            agree) with what the fusion rule logs.
        """
        vlm_labels, vlm_maps, _ = experts
        fused = self.fusion(probs, vlm_maps, vlm_labels)
        # max(1).indices: the same first-maximum index as argmax(1), which
        # is seven times slower over the class axis of an NCHW map on the CPU
        labels = fused['probs'].max(1).indices
        target = self._target(fused['probs'], labels, fused['confidence'],
                              fused.get('valid'))
        teacher_labels = probs.max(1).indices
        maps = dict(teacher=teacher_labels, vlm=vlm_labels, fused=labels)
        agreement = (teacher_labels == vlm_labels).float().mean()
        return target, maps, dict(pl_agreement=agreement,
                                  **fused.get('log', {}))
