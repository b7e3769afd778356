"""Class prompts (fixed or CoOp-style learnable) turned into class embeddings.

The classes and their phrases come from a prompt file
(:mod:`.prompt_file`). The learner owns the prompt texts, their tokenisation
(with the text encoder's tokenizer) and, for a frozen text encoder, a cache
of their pooled features; the encoder only encodes token ids.

Prompt styles of :class:`ClassPromptLearner`:

- ``'name'``: the phrase alone, e.g. "L4 vertebra".
- ``'template'``: every template filled with the phrase (and the synonyms
  with ``use_synonyms=True``).
- ``'description'``: every template filled with "<phrase>, <description>".
- ``'learnable'``: ``[BOS] ctx_1 ... ctx_M <phrase tokens>. [EOS]`` where
  the M context vectors are trainable word embeddings, shared by all
  classes or one set per class (CoOp, Zhou et al., IJCV 2022,
  https://github.com/KaiyangZhou/CoOp; DenseCLIP, Rao et al., CVPR 2022,
  https://github.com/raoyongming/DenseCLIP).

Ensembles (several prompts per class) are combined after the projection, as
in CLIP's zero-shot prompt ensembling: each prompt embedding is
L2-normalised, the class embedding is their mean, L2-normalised again. All
styles return L2-normalised class embeddings.
"""
import logging
from collections import OrderedDict
from typing import Hashable, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmseg.registry import MODELS

from .prompt_file import (PROMPT_DIR, check_templates,
                          find_matching_prompt_file, load_prompt_file)

STYLES = ('name', 'template', 'description', 'learnable')
#: Prompt sets whose frozen features are kept (e.g. several variants).
CACHE_SIZE = 16


def _short_list(names: Sequence[str], limit: int = 6) -> str:
    shown = ', '.join(names[:limit])
    return shown + (', ...' if len(names) > limit else '')


@MODELS.register_module()
class ClassPromptLearner(BaseModule):
    """One embedding per class from a prompt file and a text encoder.

    The text encoder is not owned by this module: it is passed to
    :meth:`forward`, so several prompt learners (or none) can share it. It
    needs ``tokenizer``, ``max_length``, ``device``, ``frozen``,
    ``weights_id``, ``encode``, ``features`` and ``project`` (see
    :class:`~cps4.models.text_encoders.HFTextEncoder`).

    Args:
        prompt_file (str): Prompt JSON, absolute or relative to the working
            directory or the repository root, e.g.
            'configs/_base_/prompts/mrspineseg_19units.json'.
        style (str): 'name', 'template', 'description' or 'learnable'.
            Defaults to 'template'.
        templates (list[str], optional): Override of the file's templates;
            each has one '{}'.
        n_ctx (int): Number of learnable context vectors ('learnable').
            Defaults to 4.
        class_specific_ctx (bool): One context per class ([K, n_ctx, C])
            instead of a shared one ([n_ctx, C]). Defaults to False.
        ctx_init_std (float): Std of the normal init of the context.
            Defaults to 0.02.
        class_names (list[str], optional): Classes to use, in this order
            (a subset / reordering of the file's); default all of them.
        ctx_dim (int, optional): Width of the context vectors, i.e. the text
            encoder's ``hidden_size``; required by 'learnable' (``CPS4VLM``
            fills it in from its text encoder), ignored otherwise.
        use_synonyms (bool): Also fill the templates with each class's
            synonyms ('template' style). Defaults to False.
        init_cfg (dict, optional): mmengine init config.
    """

    def __init__(self,
                 prompt_file: str,
                 style: str = 'template',
                 templates: Optional[Sequence[str]] = None,
                 n_ctx: int = 4,
                 class_specific_ctx: bool = False,
                 ctx_init_std: float = 0.02,
                 class_names: Optional[Sequence[str]] = None,
                 ctx_dim: Optional[int] = None,
                 use_synonyms: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if style not in STYLES:
            raise ValueError(f'style must be one of {STYLES}, got {style!r}.')
        if style == 'learnable' and n_ctx < 1:
            raise ValueError(f"style='learnable' needs n_ctx >= 1, "
                             f'got {n_ctx}.')
        if style == 'learnable' and ctx_dim is None:
            raise ValueError(
                "ClassPromptLearner(style='learnable') needs ctx_dim, the "
                "text encoder's hidden_size (CPS4VLM passes it; elsewhere "
                'give ctx_dim=text_encoder.hidden_size).')
        data = load_prompt_file(prompt_file)
        self.prompt_file = str(prompt_file)
        self.style = style
        self.n_ctx = n_ctx
        self.class_specific_ctx = class_specific_ctx
        self.ctx_init_std = ctx_init_std
        self.use_synonyms = use_synonyms
        if templates is not None:
            templates = [str(t) for t in templates]
            check_templates(templates, 'templates argument')
        self.templates: List[str] = list(templates or data['templates'])

        by_name = {c['name']: c for c in data['classes']}
        if class_names is None:
            self.classes = data['classes']
        else:
            missing = [n for n in class_names if n not in by_name]
            if missing:
                raise ValueError(
                    f'class_names {missing} are not in prompt file '
                    f'{self.prompt_file} (it defines '
                    f'{[c["name"] for c in data["classes"]]}).')
            self.classes = [by_name[n] for n in class_names]

        self.register_parameter('ctx', None)
        if style == 'learnable':
            shape = ((self.num_classes, n_ctx, ctx_dim)
                     if class_specific_ctx else (n_ctx, ctx_dim))
            self.ctx = nn.Parameter(torch.randn(shape) * ctx_init_std)
        self._cache: 'OrderedDict[Hashable, torch.Tensor]' = OrderedDict()
        self._warned_truncation = False

    # ------------------------------------------------------------------
    @property
    def class_names(self) -> List[str]:
        """list[str]: Class names, in the order of the embeddings."""
        return [c['name'] for c in self.classes]

    @property
    def num_classes(self) -> int:
        """int: Number of classes K, background included."""
        return len(self.classes)

    def check_classes(self, classes: Sequence[str]) -> None:
        """Raise if the dataset's classes differ from the prompts' classes.

        Args:
            classes (Sequence[str]): ``dataset.metainfo['classes']``.
        """
        classes = list(classes)
        if classes == self.class_names:
            return
        ours = self.class_names
        suggestion = find_matching_prompt_file(classes)
        hint = (f'use {suggestion}' if suggestion is not None else
                'write a prompt file for these classes under '
                f'{PROMPT_DIR}/')
        raise ValueError(
            f'prompt file {self.prompt_file} defines {len(ours)} classes '
            f'({_short_list(ours)}) but the dataset has {len(classes)} '
            f'({_short_list(classes)}); {hint} or set '
            f'model.prompt.class_names.')

    def texts(self) -> List[List[str]]:
        """Prompt strings of every class.

        Returns:
            list[list[str]]: K lists; with 'learnable' the context vectors
            are shown as 'X' (CoOp's notation).
        """
        if self.style == 'name':
            return [[c['phrase']] for c in self.classes]
        if self.style == 'learnable':
            ctx = ' '.join(['X'] * self.n_ctx)
            return [[f"{ctx} {c['phrase']}."] for c in self.classes]
        prompts = []
        for c in self.classes:
            if self.style == 'description' and c['description']:
                fills = [f"{c['phrase']}, {c['description'].rstrip('.')}"]
            else:
                fills = [c['phrase']]
                if self.style == 'template' and self.use_synonyms:
                    fills += c['synonyms']
            prompts.append([t.format(f) for f in fills
                            for t in self.templates])
        return prompts

    def tokenize(self, text_encoder: nn.Module,
                 texts: Sequence[str]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Token ids of prompts, right-padded to the longest one.

        Prompts longer than ``text_encoder.max_length`` are truncated, with
        one warning per learner.

        Args:
            text_encoder (nn.Module): Gives ``tokenizer``, ``max_length``
                and ``device``.
            texts (str | Sequence[str]): Prompt(s).

        Returns:
            tuple[Tensor, Tensor]: ``input_ids`` and ``attention_mask``
            (LongTensor [N, L]) on the text encoder's device.
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        tokenizer, max_length = text_encoder.tokenizer, text_encoder.max_length
        tokens = tokenizer(texts, padding=True, return_tensors='pt')
        if tokens['input_ids'].shape[1] > max_length:
            if not self._warned_truncation:
                longest = int(tokens['attention_mask'].sum(1).argmax())
                print_log(
                    f'ClassPromptLearner: prompts of up to '
                    f"{tokens['input_ids'].shape[1]} tokens are truncated "
                    f'to model.text_encoder.max_length={max_length}, e.g. '
                    f'{texts[longest]!r}.',
                    logger='current', level=logging.WARNING)
                self._warned_truncation = True
            tokens = tokenizer(texts, padding=True, truncation=True,
                               max_length=max_length, return_tensors='pt')
        device = text_encoder.device
        return (tokens['input_ids'].to(device),
                tokens['attention_mask'].to(device))

    def forward(self, text_encoder: nn.Module) -> torch.Tensor:
        """Class embeddings.

        Args:
            text_encoder (nn.Module): E.g. :class:`HFTextEncoder`.

        Returns:
            Tensor: L2-normalised embeddings [K, text_encoder.dim].
        """
        if self.style == 'learnable':
            ids, mask = self.tokenize(
                text_encoder, [f"{c['phrase']}." for c in self.classes])
            return F.normalize(
                text_encoder.encode(ids, mask, context=self.ctx), dim=-1)
        prompts = self.texts()
        flat = [p for per_class in prompts for p in per_class]
        embeds = F.normalize(self._encode_texts(text_encoder, flat), dim=-1)
        counts = torch.tensor([len(p) for p in prompts],
                              device=embeds.device)
        index = torch.repeat_interleave(
            torch.arange(len(prompts), device=embeds.device), counts)
        summed = embeds.new_zeros(len(prompts), embeds.shape[-1])
        summed = summed.index_add(0, index, embeds)
        return F.normalize(summed / counts.unsqueeze(1), dim=-1)

    def _encode_texts(self, text_encoder: nn.Module,
                      texts: List[str]) -> torch.Tensor:
        """Projected embeddings of ``texts``; the pooled features of a
        frozen encoder are computed once, without gradients, and cached
        (the projection runs on every call, so it keeps training)."""
        if not text_encoder.frozen:
            return text_encoder.encode(*self.tokenize(text_encoder, texts))
        key = (tuple(texts), text_encoder.weights_id,
               str(text_encoder.device))
        feats = self._cache.get(key)
        if feats is None:
            with torch.no_grad():
                feats = text_encoder.features(
                    *self.tokenize(text_encoder, texts))
            self._cache[key] = feats
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return text_encoder.project(feats)

    def clear_cache(self) -> None:
        """Drop the cached features of frozen text encoders."""
        self._cache.clear()
