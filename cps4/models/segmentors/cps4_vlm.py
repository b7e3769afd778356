"""Stage 1 of CPS4: the class-specific consistency constrained VLM."""
import math
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.structures import PixelData
from mmseg.models.segmentors import BaseSegmentor
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import (ConfigType, OptConfigType, OptMultiConfig,
                         OptSampleList, SampleList)
from torch import Tensor

from cps4.ops import pixel_text_attention


@MODELS.register_module()
class CPS4VLM(BaseSegmentor):
    """Vision-text model whose class prompts attend to their spine unit.

    Call graph::

        loss(inputs, data_samples)
         ├─ class_embeddings()           prompts -> text encoder -> t_k [K, D]
         ├─ extract_feat(inputs)         backbone (+ neck) -> multi-scale maps
         ├─ encode(feats, t)
         │   ├─ visual tokens V          1x1 conv of the deepest map, [B, N, D]
         │   ├─ token attention          a_k = softmax_n(q(t_k) . k(v_n) / sqrt(D))
         │   ├─ context update           t'_k = t_k + gamma * o(sum_n a_kn v(v_n))
         │   ├─ pixel features F         FPN-style fusion at stride 4, [B, D, h, w]
         │   └─ pixel_text_attention     S_k = tau * cos(F, t'_k) + b_k (fused op)
         ├─ token_loss(a, y)             token-level attention consistency
         └─ pixel_loss(S, y)             pixel-level attention consistency

        predict(inputs, data_samples)
         └─ encode -> B_k = sigmoid(S_k); unified map argmax_k B_k where
            max_k B_k >= threshold, else background; confidence max_k B_k

    Args:
        backbone (dict): Any mmseg backbone config.
        text_encoder (dict): Text encoder config (e.g. ``HFTextEncoder``).
        prompt (dict): Class prompt config (e.g. ``ClassPromptLearner``);
            built with ``ctx_dim`` defaulting to the text encoder's
            ``hidden_size``.
        in_channels (Sequence[int]): Channels of the backbone (or neck)
            outputs used below.
        token_index (int): Which output gives the visual tokens (the
            deepest, stride 16 or 32). Defaults to -1.
        pixel_indices (Sequence[int]): Outputs fused into the dense pixel
            features; the first sets their resolution. Defaults to
            (0, 1, 2, 3).
        embed_dim (int): Joint embedding dimension D; must equal the text
            encoder's ``dim``. Defaults to 256.
        gamma_init (float): Initial weight of the attended visual context in
            the class-embedding update. Defaults to 0.1.
        logit_scale_init (float): Initial tau (learned as log tau).
            Defaults to 10.
        bias_init (float): Initial per-class bias b_k; negative so that the
            binary maps start mostly off. Defaults to -2.
        threshold (float): delta of the unified map. Defaults to 0.5.
        token_loss (dict, optional): Token-level loss; None switches it off.
        pixel_loss (dict, optional): Pixel-level loss; None switches it
            off. With both off the model learns from a plain cross-entropy
            over S (the ablation baseline, see ``plain_ce_weight``).
        plain_ce_weight (float): Weight of the plain cross-entropy over
            softmax_k(S) used only when ``pixel_loss`` is None, so that the
            model still learns to segment. Defaults to 1.
        neck (dict, optional): mmseg neck config.
        norm_cfg (dict): Norm layer of the pixel decoder.
        align_corners (bool): Passed to the resizes. Defaults to False.
        train_cfg, test_cfg, data_preprocessor, init_cfg: As in mmseg.
    """

    def __init__(self,
                 backbone: ConfigType,
                 text_encoder: ConfigType,
                 prompt: ConfigType,
                 in_channels: Sequence[int],
                 token_index: int = -1,
                 pixel_indices: Sequence[int] = (0, 1, 2, 3),
                 embed_dim: int = 256,
                 gamma_init: float = 0.1,
                 logit_scale_init: float = 10.0,
                 bias_init: float = -2.0,
                 threshold: float = 0.5,
                 token_loss: OptConfigType = dict(type='TokenAttentionLoss'),
                 pixel_loss: OptConfigType = dict(type='PixelAttentionLoss'),
                 plain_ce_weight: float = 1.0,
                 neck: OptConfigType = None,
                 norm_cfg: ConfigType = dict(type='BN', requires_grad=True),
                 align_corners: bool = False,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        if neck is not None:
            self.neck = MODELS.build(neck)
        self.text_encoder = MODELS.build(text_encoder)
        # learnable context vectors live in the text encoder's token space
        self.prompt = MODELS.build(
            prompt, default_args=dict(ctx_dim=self.text_encoder.hidden_size))
        if self.text_encoder.dim != embed_dim:
            raise ValueError(
                f'CPS4VLM: text_encoder.embed_dim is {self.text_encoder.dim} '
                f'but embed_dim is {embed_dim}; set both to the same value.')
        self.in_channels = list(in_channels)
        self.token_index = token_index
        self.pixel_indices = list(pixel_indices)
        self.embed_dim = embed_dim
        self.num_classes = self.prompt.num_classes
        self.threshold = threshold
        self.align_corners = align_corners
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg

        d = embed_dim
        self.token_proj = nn.Conv2d(self.in_channels[token_index], d, 1)
        self.q_proj = nn.Linear(d, d)
        self.k_proj = nn.Linear(d, d)
        self.v_proj = nn.Linear(d, d)
        self.o_proj = nn.Linear(d, d)
        self.gamma = nn.Parameter(torch.tensor(float(gamma_init)))
        self.lateral = nn.ModuleList(
            nn.Conv2d(self.in_channels[i], d, 1) for i in self.pixel_indices)
        self.fuse = nn.Sequential(
            ConvModule(d, d, 3, padding=1, norm_cfg=norm_cfg),
            nn.Conv2d(d, d, 1))
        self.log_logit_scale = nn.Parameter(
            torch.tensor(math.log(logit_scale_init)))
        self.class_bias = nn.Parameter(
            torch.full((self.num_classes, ), float(bias_init)))

        self.token_loss = MODELS.build(token_loss) if token_loss else None
        self.pixel_loss = MODELS.build(pixel_loss) if pixel_loss else None
        self.plain_ce_weight = plain_ce_weight

    # ------------------------------------------------------------------
    # building blocks
    # ------------------------------------------------------------------
    def check_classes(self, classes: Sequence[str]) -> None:
        """Raise when the prompts do not match the dataset's classes."""
        self.prompt.check_classes(classes)

    def class_embeddings(self) -> Tensor:
        """Class embeddings t_k [K, D] from the prompts."""
        return self.prompt(self.text_encoder)

    def extract_feat(self, inputs: Tensor) -> List[Tensor]:
        """Multi-scale image features from the backbone (and neck)."""
        feats = self.backbone(inputs)
        if self.with_neck:
            feats = self.neck(feats)
        return list(feats)

    def encode(self, feats: List[Tensor],
               text: Tensor) -> Dict[str, Tensor]:
        """Token attention, context update and pixel-level maps.

        Args:
            feats (list[Tensor]): Backbone outputs.
            text (Tensor): Class embeddings [K, D].

        Returns:
            dict: ``attn`` [B, K, N], ``token_hw`` (h, w), ``text``
            [B, K, D] (updated), ``logits`` S [B, K, h4, w4].
        """
        tok = self.token_proj(feats[self.token_index])
        b, d, th, tw = tok.shape
        tokens = tok.flatten(2).transpose(1, 2)  # [B, N, D]
        t = text.unsqueeze(0).expand(b, -1, -1)  # [B, K, D]
        q = self.q_proj(t)
        k = self.k_proj(tokens)
        # softmax in float32 also under mixed precision: attn is a target
        # of the token loss
        attn = torch.softmax(
            (q @ k.transpose(1, 2)).float() / math.sqrt(d), dim=-1)
        context = self.o_proj(attn @ self.v_proj(tokens))
        t_upd = t + self.gamma * context

        first = self.pixel_indices[0]
        size = feats[first].shape[2:]
        pix = 0
        for lateral, idx in zip(self.lateral, self.pixel_indices):
            pix = pix + resize(
                lateral(feats[idx]), size=size, mode='bilinear',
                align_corners=self.align_corners)
        pix = self.fuse(pix)
        logits = pixel_text_attention(
            pix, t_upd, self.log_logit_scale.exp(), self.class_bias,
            mode='logits')
        return dict(attn=attn, token_hw=(th, tw), text=t_upd, logits=logits)

    def _run(self, inputs: Tensor) -> Dict[str, Tensor]:
        return self.encode(self.extract_feat(inputs), self.class_embeddings())

    # ------------------------------------------------------------------
    # mmseg segmentor interface
    # ------------------------------------------------------------------
    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: List[dict]) -> Tensor:
        """Class logits S upsampled to the input size."""
        logits = self._run(inputs)['logits']
        return resize(logits, size=inputs.shape[2:], mode='bilinear',
                      align_corners=self.align_corners)

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Token- and pixel-level attention-consistency losses."""
        out = self._run(inputs)
        seg = torch.stack(
            [s.gt_sem_seg.data.squeeze(0) for s in data_samples]).long()
        losses = dict()
        if self.token_loss is not None:
            self._add_loss(losses, self.token_loss,
                           self.token_loss(out['attn'], seg, out['token_hw']))
        if self.pixel_loss is not None:
            self._add_loss(losses, self.pixel_loss,
                           self.pixel_loss(out['logits'], seg))
        else:
            logits = resize(out['logits'], size=seg.shape[1:],
                            mode='bilinear', align_corners=self.align_corners)
            losses['loss_ce'] = self.plain_ce_weight * F.cross_entropy(
                logits, seg, ignore_index=255)
        return losses

    @staticmethod
    def _add_loss(losses: dict, module: nn.Module, value) -> None:
        """Store a loss, or its separately weighted terms when it returns a
        dict (``return_terms=True``)."""
        if isinstance(value, dict):
            losses.update(value)
        else:
            losses[module.loss_name] = value

    def predict(self,
                inputs: Tensor,
                data_samples: OptSampleList = None) -> SampleList:
        """Unified multi-class map, per-class binary maps and confidence.

        Each returned sample holds ``pred_sem_seg`` (unified map),
        ``seg_logits`` (S), ``class_maps`` (B_k = sigmoid(S_k)) and
        ``confidence`` (max_k B_k), all at the original image size.
        """
        if data_samples is not None:
            metas = [s.metainfo for s in data_samples]
        else:
            metas = [dict(ori_shape=inputs.shape[2:],
                          img_shape=inputs.shape[2:],
                          pad_shape=inputs.shape[2:],
                          padding_size=[0, 0, 0, 0])] * inputs.shape[0]
        logits = self.encode_decode(inputs, metas)
        results = self.postprocess_result(logits, data_samples)
        for sample in results:
            maps = sample.seg_logits.data.sigmoid()
            conf, idx = maps.max(dim=0, keepdim=True)
            unified = torch.where(conf >= self.threshold, idx,
                                  torch.zeros_like(idx))
            sample.pred_sem_seg = PixelData(data=unified)
            sample.class_maps = PixelData(data=maps)
            sample.confidence = PixelData(data=conf)
        return results

    def _forward(self,
                 inputs: Tensor,
                 data_samples: OptSampleList = None) -> Tensor:
        """Class logits S at stride 4 (``mode='tensor'``)."""
        return self._run(inputs)['logits']

    def unified_map(self, inputs: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Unified map, binary maps and confidence at the input size.

        Used by stage 2 on (padded) training batches, where no resize to an
        original shape is wanted.

        Returns:
            tuple: ``labels`` [B, H, W], ``maps`` [B, K, H, W],
            ``confidence`` [B, H, W].
        """
        maps = self.encode_decode(inputs, []).sigmoid()
        conf, idx = maps.max(dim=1)
        labels = torch.where(conf >= self.threshold, idx,
                             torch.zeros_like(idx))
        return labels, maps, conf
