"""Class prompts (fixed or CoOp-style learnable) turned into class embeddings.

A prompt file (``configs/_base_/prompts/*.json``) lists one entry per class,
background included, in the dataset's label order::

    {"classes": [{"name": "L4",                 # dataset class name
                  "phrase": "L4 vertebra",      # optional, default: name
                  "description": "the fourth lumbar vertebra, below L3 ...",
                  "synonyms": ["fourth lumbar vertebra"]},   # optional
                 ...],
     "templates": ["a sagittal T2 MR image of the {}.", ...]}

``name`` must match the dataset's ``metainfo['classes']``; ``phrase`` is
the noun phrase the templates are filled with (a bare "L4" is ambiguous
between the vertebra and the discs around it).

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
import json
from pathlib import Path
from typing import List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS

STYLES = ('name', 'template', 'description', 'learnable')

REPO_ROOT = Path(__file__).resolve().parents[3]
PROMPT_DIR = Path('configs') / '_base_' / 'prompts'


def resolve_prompt_file(prompt_file: Union[str, Path]) -> Path:
    """Find a prompt file given absolutely, or relative to cwd / repo root.

    Args:
        prompt_file (str | Path): Path such as
            'configs/_base_/prompts/mrspineseg_19units.json'.

    Returns:
        Path: The existing file.
    """
    path = Path(prompt_file).expanduser()
    candidates = [path] if path.is_absolute() else [
        Path.cwd() / path, REPO_ROOT / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ', '.join(str(c) for c in candidates)
    raise FileNotFoundError(
        f'Prompt file {str(prompt_file)!r} not found (tried {tried}). '
        f'Prompt files live in {PROMPT_DIR}/ (e.g. '
        f"{PROMPT_DIR / 'mrspineseg_19units.json'}).")


def load_prompt_file(prompt_file: Union[str, Path]) -> dict:
    """Read and validate a prompt file.

    Args:
        prompt_file (str | Path): See :func:`resolve_prompt_file`.

    Returns:
        dict: ``classes`` (list of dicts with ``name``, ``phrase``,
        ``description``, ``synonyms``), ``templates`` (list of str) and
        ``path`` (the resolved file).
    """
    path = resolve_prompt_file(prompt_file)
    with open(path, encoding='utf-8') as f:
        data = json.load(f)
    classes = data.get('classes') if isinstance(data, dict) else None
    if not classes:
        raise ValueError(f"Prompt file {path} has no 'classes' list.")
    parsed = []
    for i, entry in enumerate(classes):
        if not isinstance(entry, dict) or 'name' not in entry:
            raise ValueError(
                f"Prompt file {path}: class #{i} needs at least a 'name'.")
        name = str(entry['name'])
        parsed.append(dict(
            name=name,
            phrase=str(entry.get('phrase') or name),
            description=str(entry.get('description') or '').strip(),
            synonyms=[str(s) for s in entry.get('synonyms') or []]))
    names = [c['name'] for c in parsed]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(
            f'Prompt file {path} repeats class names {duplicates}.')
    templates = [str(t) for t in data.get('templates') or ['{}']]
    _check_templates(templates, str(path))
    return dict(classes=parsed, templates=templates, path=path)


def _check_templates(templates: Sequence[str], source: str) -> None:
    for template in templates:
        if template.count('{}') != 1:
            raise ValueError(
                f"Template {template!r} ({source}) must contain exactly one "
                f"'{{}}' placeholder for the class phrase.")


def find_matching_prompt_file(classes: Sequence[str]) -> Optional[Path]:
    """A prompt file of the repository defining exactly ``classes``."""
    folder = REPO_ROOT / PROMPT_DIR
    for path in sorted(folder.glob('*.json')):
        try:
            names = [c['name'] for c in load_prompt_file(path)['classes']]
        except (ValueError, KeyError, json.JSONDecodeError):
            continue
        if names == list(classes):
            return PROMPT_DIR / path.name
    return None


def _short_list(names: Sequence[str], limit: int = 6) -> str:
    shown = ', '.join(names[:limit])
    return shown + (', ...' if len(names) > limit else '')


@MODELS.register_module()
class ClassPromptLearner(BaseModule):
    """One embedding per class from a prompt file and a text encoder.

    The text encoder is not owned by this module: it is passed to
    :meth:`forward`, so several prompt learners (or none) can share it.

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
            encoder's ``hidden_size``. With 'learnable' and no ``ctx_dim``
            the owner must call :meth:`init_context` before building the
            optimizer.
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
        data = load_prompt_file(prompt_file)
        self.prompt_file = str(prompt_file)
        self.style = style
        self.n_ctx = n_ctx
        self.class_specific_ctx = class_specific_ctx
        self.ctx_init_std = ctx_init_std
        self.use_synonyms = use_synonyms
        if templates is not None:
            templates = [str(t) for t in templates]
            _check_templates(templates, 'templates argument')
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
        if style == 'learnable' and ctx_dim is not None:
            self.init_context(ctx_dim)

    # ------------------------------------------------------------------
    @property
    def class_names(self) -> List[str]:
        """list[str]: Class names, in the order of the embeddings."""
        return [c['name'] for c in self.classes]

    @property
    def num_classes(self) -> int:
        """int: Number of classes K, background included."""
        return len(self.classes)

    def init_context(self, ctx_dim: int) -> None:
        """Create the learnable context vectors ('learnable' style only).

        Idempotent for the same width. Call it before the optimizer is
        built, e.g. from the segmentor's ``__init__`` with
        ``text_encoder.hidden_size``.

        Args:
            ctx_dim (int): Width of the word embeddings of the text encoder.
        """
        if self.style != 'learnable':
            return
        if self.ctx is not None:
            if self.ctx.shape[-1] != ctx_dim:
                raise ValueError(
                    f'Context vectors already have width '
                    f'{self.ctx.shape[-1]}, asked for {ctx_dim}.')
            return
        shape = ((self.num_classes, self.n_ctx, ctx_dim)
                 if self.class_specific_ctx else (self.n_ctx, ctx_dim))
        self.ctx = nn.Parameter(torch.randn(shape) * self.ctx_init_std)

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

    def forward(self, text_encoder: nn.Module) -> torch.Tensor:
        """Class embeddings.

        Args:
            text_encoder (nn.Module): E.g. :class:`HFTextEncoder`; called with
                texts, or (``'learnable'``) with ``inputs_embeds``.

        Returns:
            Tensor: L2-normalised embeddings [K, text_encoder.dim].
        """
        if self.style == 'learnable':
            return F.normalize(self._learnable(text_encoder), dim=-1)
        prompts = self.texts()
        flat = [p for per_class in prompts for p in per_class]
        embeds = F.normalize(text_encoder(flat), dim=-1)
        counts = torch.tensor([len(p) for p in prompts],
                              device=embeds.device)
        index = torch.repeat_interleave(
            torch.arange(len(prompts), device=embeds.device), counts)
        summed = embeds.new_zeros(len(prompts), embeds.shape[-1])
        summed = summed.index_add(0, index, embeds)
        return F.normalize(summed / counts.unsqueeze(1), dim=-1)

    def _learnable(self, text_encoder: nn.Module) -> torch.Tensor:
        if self.ctx is None:
            raise RuntimeError(
                "ClassPromptLearner(style='learnable') has no context "
                'vectors yet: pass ctx_dim=text_encoder.hidden_size or call '
                'init_context(text_encoder.hidden_size) before building the '
                'optimizer.')
        if self.ctx.shape[-1] != text_encoder.hidden_size:
            raise ValueError(
                f'Context width {self.ctx.shape[-1]} != text encoder hidden '
                f'size {text_encoder.hidden_size}.')
        tokens = text_encoder.tokenize(
            [f"{c['phrase']}." for c in self.classes])
        ids, mask = tokens['input_ids'], tokens['attention_mask']
        words = text_encoder.embed_tokens(ids)
        num = len(self.classes)
        ctx = self.ctx.to(words.dtype)
        if ctx.dim() == 2:
            ctx = ctx.unsqueeze(0).expand(num, -1, -1)
        p = text_encoder.num_prefix_tokens
        embeds = torch.cat([words[:, :p], ctx, words[:, p:]], dim=1)
        mask = torch.cat(
            [mask[:, :p], mask.new_ones(num, self.n_ctx), mask[:, p:]], dim=1)
        max_pos = getattr(text_encoder, 'max_positions', None)
        if max_pos is not None and embeds.shape[1] > max_pos:
            raise ValueError(
                f'{embeds.shape[1]} tokens (n_ctx={self.n_ctx} + class '
                f'phrase) exceed the text encoder limit of {max_pos}.')
        return text_encoder(inputs_embeds=embeds, attention_mask=mask)
