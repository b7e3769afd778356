"""CPS4 stage 2: any SSL strategy with VLM-cleaned pseudo labels."""
import os.path as osp
from typing import Dict, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.runner import load_checkpoint
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig, SampleList
from torch import Tensor

from .semi_base_segmentor import SemiBaseSegmentor


@MODELS.register_module()
class CPS4SemiSegmentor(SemiBaseSegmentor):
    """Semi-supervised segmentor whose pseudo labels the stage-1 VLM cleans.

    Call graph of the pseudo-label step (the rest is
    :class:`SemiBaseSegmentor`'s)::

        make_targets(teacher_probs, weak_inputs)
         ├─ vlm.unified_map(weak_inputs)   frozen stage-1 model, no grad:
         │                                 class maps B_k, unified labels
         ├─ fusion(q_t, B, labels_v)       registered rule -> q, confidence
         └─ labels = argmax q, weight = 1[confidence >= pseudo_threshold]

    The SSL strategy is a config switch (``ssl_strategy``), as is the
    fusion rule (``fusion``). The VLM is frozen, always in eval mode, and
    its weights are stored in this model's checkpoints, so a stage-2
    checkpoint is self-contained.

    Args:
        segmentor (dict): The student/teacher segmentor config.
        vlm (dict): The stage-1 model: ``config`` (path of its config file)
            or ``model`` (its model dict), and ``checkpoint`` (path of the
            stage-1 checkpoint; None only to build an untrained VLM for
            tests and for loading a stage-2 checkpoint that holds it).
        fusion (dict): Config of a fusion rule from
            :mod:`cps4.models.pseudo_label`. Defaults to ProductFusion.
        ssl_strategy, semi_train_cfg, semi_test_cfg, data_preprocessor,
        init_cfg: As in :class:`SemiBaseSegmentor`.
    """

    def __init__(self,
                 segmentor: ConfigType,
                 vlm: ConfigType,
                 fusion: ConfigType = dict(type='ProductFusion'),
                 ssl_strategy: ConfigType = dict(type='MeanTeacher'),
                 semi_train_cfg: OptConfigType = None,
                 semi_test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            segmentor=segmentor,
            ssl_strategy=ssl_strategy,
            semi_train_cfg=semi_train_cfg,
            semi_test_cfg=semi_test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.vlm = self._build_vlm(dict(vlm))
        self.fusion = MODELS.build(fusion)
        self._vlm_cache: Optional[Tuple[Tensor, tuple]] = None

    def _build_vlm(self, vlm: dict) -> nn.Module:
        unknown = set(vlm) - {'config', 'model', 'checkpoint'}
        if unknown:
            raise KeyError(f'CPS4SemiSegmentor.vlm: unknown key(s) '
                           f'{sorted(unknown)}; use config or model, and '
                           'checkpoint.')
        if ('config' in vlm) == ('model' in vlm):
            raise ValueError('CPS4SemiSegmentor.vlm needs exactly one of '
                             '`config` (stage-1 config file) and `model`.')
        if 'config' in vlm:
            if not osp.isfile(vlm['config']):
                raise FileNotFoundError(
                    f'stage-1 config {vlm["config"]} not found; set '
                    'model.vlm.config to the config the VLM was trained with.')
            model_cfg = Config.fromfile(vlm['config']).model
        else:
            model_cfg = Config(dict(model=vlm['model'])).model
        self._check_normalisation(model_cfg.get('data_preprocessor'))
        model_cfg = dict(model_cfg)
        model_cfg.pop('data_preprocessor', None)
        net = MODELS.build(model_cfg)
        if not hasattr(net, 'unified_map'):
            raise TypeError(f'{type(net).__name__} has no unified_map(); the '
                            'stage-1 model must be a CPS4VLM.')
        if int(net.num_classes) != self.num_classes:
            raise ValueError(
                f'the stage-1 VLM predicts {net.num_classes} classes, the '
                f'student {self.num_classes}; train stage 1 on the same '
                'dataset (same classes) as stage 2.')
        ckpt = vlm.get('checkpoint')
        if ckpt is not None:
            if not osp.isfile(ckpt):
                raise FileNotFoundError(
                    f'stage-1 checkpoint {ckpt} not found; train stage 1 '
                    'first (tools/train.py configs/cps4/cps4-vlm_*.py) and '
                    'set model.vlm.checkpoint=WORK_DIR/iter_N.pth.')
            load_checkpoint(net, ckpt, map_location='cpu', strict=True,
                            logger='current')
            # the runner calls init_weights() on the whole model before
            # training; without this flag it would overwrite the VLM
            net.is_init = True
            print_log(f'CPS4SemiSegmentor: loaded the stage-1 VLM from {ckpt}',
                      logger='current')
        net.requires_grad_(False)
        net.eval()
        return net

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
        """Raise when the VLM's class prompts do not match the dataset."""
        self.vlm.check_classes(classes)

    def train(self, mode: bool = True) -> 'CPS4SemiSegmentor':
        """Set training mode; teacher and VLM always stay in eval mode."""
        super().train(mode)
        if hasattr(self, 'vlm'):
            self.vlm.eval()
        return self

    def vlm_outputs(self, weak_inputs: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Unified labels, class maps and confidence of the VLM (cached for
        the batch, so two-student strategies run it once)."""
        key = (weak_inputs.data_ptr(), tuple(weak_inputs.shape),
               weak_inputs._version)
        if self._vlm_cache is not None and self._vlm_cache[0] == key:
            return self._vlm_cache[1]
        with torch.no_grad():
            out = self.vlm.unified_map(weak_inputs)
        self._vlm_cache = (key, out)
        return out

    def make_targets(self, probs: Tensor, weak_inputs: Tensor,
                     weak_samples: SampleList) -> Tuple[dict, Dict]:
        """Fuse the teacher's probabilities with the VLM's class maps.

        Returns:
            tuple[dict, dict]: The fused target ``{probs, labels, weight}``
            and log variables (``pl_dice_teacher``, ``pl_dice_vlm``,
            ``pl_dice_fused``, ``pl_dice_masked``, ``pl_mask_ratio``,
            ``pl_agreement``).
        """
        vlm_labels, vlm_maps, _ = self.vlm_outputs(weak_inputs)
        fused = self.fusion(probs, vlm_maps, vlm_labels)
        # max(1).indices: the same first-maximum index as argmax(1), which
        # is seven times slower over the class axis of an NCHW map on the CPU
        labels = fused['probs'].max(1).indices
        target = self._target(fused['probs'], labels, fused['confidence'],
                              fused.get('valid'))
        teacher_labels = probs.max(1).indices
        log = self.pseudo_quality(
            dict(teacher=teacher_labels, vlm=vlm_labels, fused=labels),
            target, weak_samples)
        log['pl_agreement'] = (teacher_labels == vlm_labels).float().mean()
        return target, log

    def loss(self, multi_batch_inputs: Dict[str, Tensor],
             multi_batch_data_samples: Dict[str, SampleList]) -> dict:
        self._vlm_cache = None
        try:
            return super().loss(multi_batch_inputs, multi_batch_data_samples)
        finally:
            self._vlm_cache = None
