"""Split one sample into pixel-aligned views, one per training branch."""
import copy
from typing import Dict, List, Optional, Sequence

from mmcv.transforms import BaseTransform, Compose
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class MultiBranch(BaseTransform):
    """Run one sub-pipeline per branch on copies of the same sample.

    Geometric augmentation belongs *before* this transform (in the outer
    pipeline), photometric augmentation inside the branch pipelines: the
    views then stay pixel-aligned, so a pseudo label computed on the weak
    view is valid on the strong one without warping. Every branch
    pipeline must end with ``PackSegInputs``.

    The output packs every name of ``branch_field``; branches this sample
    does not have are ``None`` (labelled samples fill ``sup``, unlabelled
    ones ``unsup_teacher`` and ``unsup_student``), and
    :class:`cps4.models.MultiBranchDataPreprocessor` drops them per branch.

    Example::

        dict(type='MultiBranch',
             branch_field=['sup', 'unsup_teacher', 'unsup_student'],
             unsup_teacher=[dict(type='PackSegInputs')],
             unsup_student=[dict(type='RandomGamma'),
                            dict(type='PackSegInputs')])

    Args:
        branch_field (Sequence[str]): Every branch name used in training.
        **branch_pipelines (list[dict]): Pipeline of each branch this
            sample has.
    """

    def __init__(self, branch_field: Sequence[str],
                 **branch_pipelines: List[dict]) -> None:
        self.branch_field = list(branch_field)
        unknown = sorted(set(branch_pipelines) - set(self.branch_field))
        if unknown:
            raise ValueError(
                f'MultiBranch: pipelines {unknown} are not in branch_field '
                f'{self.branch_field}; add them there.')
        if not branch_pipelines:
            raise ValueError('MultiBranch needs at least one branch pipeline.')
        self.branch_pipelines = {
            name: Compose(pipeline)
            for name, pipeline in branch_pipelines.items()
        }

    def transform(self, results: dict) -> Optional[Dict[str, dict]]:
        """Return ``{'inputs': {branch: ...}, 'data_samples': {...}}``."""
        inputs, samples = {}, {}
        for name in self.branch_field:
            pipeline = self.branch_pipelines.get(name)
            if pipeline is None:
                inputs[name], samples[name] = None, None
                continue
            packed = pipeline(copy.deepcopy(results))
            if packed is None:
                return None
            if 'inputs' not in packed or 'data_samples' not in packed:
                raise KeyError(
                    f'MultiBranch: branch {name!r} must end with '
                    'PackSegInputs (no "inputs"/"data_samples" produced).')
            inputs[name] = packed['inputs']
            samples[name] = packed['data_samples']
        return dict(inputs=inputs, data_samples=samples)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(branch_field={self.branch_field}, '
                f'branches={list(self.branch_pipelines)})')
