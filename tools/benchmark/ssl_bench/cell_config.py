"""The config of one benchmark run, built from a method's template."""
import os.path as osp
from typing import List, Optional, Tuple

from mmengine.config import Config

from cps4.utils import enable_channels_last, enable_mixed_precision
from .schedules import PRECISIONS, REPO_ROOT, Schedule

#: Transforms whose size a schedule's ``img_size`` sets, and the argument.
RESIZE_KEYS = {'Resize': 'scale', 'RandomResize': 'scale',
               'RandomCrop': 'crop_size'}


def _walk(node, fn):
    """Call ``fn`` on every dict nested in ``node`` (lists and dicts)."""
    if isinstance(node, dict):
        fn(node)
        for v in node.values():
            _walk(v, fn)
    elif isinstance(node, (list, tuple)):
        for v in node:
            _walk(v, fn)


def datasets_of(cfg: Config) -> List[dict]:
    """The datasets of the train, val and test loaders; a semi-supervised
    ``ConcatDataset`` gives its labelled and unlabelled sources."""
    out = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        ds = cfg[loader]['dataset']
        out += ds['datasets'] if ds.get('type') == 'ConcatDataset' else [ds]
    return out


def is_semi(cfg: Config) -> bool:
    """Whether ``cfg`` trains a semi-supervised model (it wraps a
    ``segmentor`` and mixes labelled and unlabelled slices per batch)."""
    return 'segmentor' in cfg.model


def set_image_size(cfg: Config, img_size: int) -> None:
    """Set the size of every resize and crop (:data:`RESIZE_KEYS`) of the
    dataset pipelines, branch pipelines included."""
    size = (img_size, img_size)

    def resize(t):
        key = RESIZE_KEYS.get(t.get('type'))
        if key is not None:
            t[key] = size

    for ds in datasets_of(cfg):
        _walk(ds.get('pipeline', []), resize)


def apply_schedule(cfg: Config, schedule: Schedule,
                   stage1: bool = False) -> None:
    """Merge ``schedule`` into ``cfg`` in place: its run keys, image size,
    batch size and (SSL) ramp-up (see :mod:`.schedules`). A
    ``PseudoLabelQualityHook`` logs its summary at least once per run."""
    cfg.merge_from_dict(schedule.options(stage1))
    iters = cfg.train_cfg.max_iters
    for hook in cfg.get('custom_hooks', []):
        if hook['type'] == 'PseudoLabelQualityHook':
            hook['interval'] = min(hook['interval'], iters)
    set_image_size(cfg, schedule.img_size)
    train = cfg.train_dataloader
    if is_semi(cfg):
        train['batch_size'] = 2 * schedule.batch
        train['sampler']['batch_size'] = 2 * schedule.batch
        cfg.model.semi_train_cfg['rampup_iters'] = schedule.rampup_iters
    else:
        train['batch_size'] = schedule.batch


def set_num_classes(cfg: Config, num_classes: int) -> None:
    """Set the class count of a segmentation network config (the
    ``num_classes`` of its model base's decode head; an SSL model's network
    is ``model.segmentor``)."""
    key = ('model.segmentor.decode_head.num_classes' if is_semi(cfg) else
           'model.decode_head.num_classes')
    cfg.merge_from_dict({key: num_classes})


def set_stage1_vlm(cfg: Config, stage1_config: str, checkpoint: str) -> None:
    """Make ``model.vlm`` of a CPS4 config the model of a stage-1 run.

    The VLM is built as that run trained it (its prompt file, backbone and
    heads), loaded from ``checkpoint`` through ``init_cfg``.
    """
    stage1 = Config.fromfile(stage1_config)
    cfg.model['vlm'] = dict(
        stage1.model.to_dict(),
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint))


def cell_config(template: str, data_root: str, split: str, num_classes: int,
                schedule: Schedule, stage1: bool = False,
                prompt_file: Optional[str] = None,
                vlm: Optional[Tuple[str, str]] = None,
                predict_on: Optional[str] = None,
                precision: Optional[str] = None) -> Config:
    """The config of one cell, built from a method's template.

    Args:
        template (str): Template config file, relative to the repository
            root (or absolute).
        data_root (str): Converted dataset folder.
        split (str): Split file relative to ``data_root``.
        num_classes (int): Classes of the dataset, background included.
        schedule (Schedule): Image size, iterations and batch size.
        stage1 (bool): ``template`` is a stage-1 VLM config; its classes
            come from ``prompt_file``.
        prompt_file (str, optional): Stage-1 prompt file.
        vlm (tuple[str, str], optional): Config and checkpoint of the
            stage-1 run, for CPS4 cells: ``model.vlm`` becomes that
            config's model with ``init_cfg.checkpoint`` the checkpoint.
        predict_on (str, optional): ``semi_test_cfg.predict_on`` of an SSL
            config.
        precision (str, optional): One of :data:`PRECISIONS`. Defaults to
            the schedule's.
    """
    precision = precision or schedule.precision
    if precision not in PRECISIONS:
        raise ValueError(f'unknown precision {precision!r}; choose from '
                         f'{PRECISIONS}')
    cfg = Config.fromfile(osp.join(REPO_ROOT, template))
    for ds in datasets_of(cfg):
        ds.update(data_root=data_root, split=split)
    apply_schedule(cfg, schedule, stage1)
    if stage1:
        cfg.model.prompt['prompt_file'] = prompt_file
    else:
        set_num_classes(cfg, num_classes)
    if vlm is not None:
        set_stage1_vlm(cfg, *vlm)
    if predict_on is not None and 'semi_test_cfg' in cfg.model:
        cfg.model.semi_test_cfg['predict_on'] = predict_on
    if precision == 'bf16':
        enable_mixed_precision(cfg)
        enable_channels_last(cfg)
    return cfg
