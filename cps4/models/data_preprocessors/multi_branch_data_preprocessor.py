"""Data preprocessor for batches of multi-branch samples."""
from typing import Dict, Optional

from mmengine.model import BaseDataPreprocessor
from mmseg.registry import MODELS
from mmseg.utils import ConfigType


@MODELS.register_module()
class MultiBranchDataPreprocessor(BaseDataPreprocessor):
    """Normalise and pad each branch of a multi-branch batch separately.

    In training the batch comes from :class:`cps4.datasets.MultiBranch`:
    ``data['inputs']`` and ``data['data_samples']`` map each branch name to
    a list with one entry per sample, ``None`` where the sample lacks the
    branch (a labelled slice has no ``unsup_*`` views). Those entries are
    dropped and the rest of each branch goes through the wrapped
    preprocessor, giving ``{'inputs': {branch: Tensor}, 'data_samples':
    {branch: list}}``; an empty branch is left out. Outside training the
    batch is an ordinary single-branch one and is passed through.

    Args:
        data_preprocessor (dict): Config of the wrapped preprocessor,
            e.g. ``SegDataPreProcessor``.
    """

    def __init__(self, data_preprocessor: ConfigType) -> None:
        super().__init__()
        self.data_preprocessor = MODELS.build(data_preprocessor)

    def forward(self, data: dict, training: bool = False) -> Dict:
        """Preprocess a (multi-branch) batch.

        Args:
            data (dict): The collated batch.
            training (bool): Whether this is a training batch.

        Returns:
            dict: ``inputs`` and ``data_samples``, per branch in training.
        """
        if not training or not isinstance(data.get('inputs'), dict):
            return self.data_preprocessor(data, training)
        out_inputs, out_samples = {}, {}
        for branch, inputs in data['inputs'].items():
            samples = data['data_samples'][branch]
            keep = [i for i, x in enumerate(inputs) if x is not None]
            if not keep:
                continue
            batch = self.data_preprocessor(
                dict(inputs=[inputs[i] for i in keep],
                     data_samples=[samples[i] for i in keep]), True)
            out_inputs[branch] = batch['inputs']
            out_samples[branch] = batch['data_samples']
        return dict(inputs=out_inputs, data_samples=out_samples)

    @property
    def device(self) -> Optional[object]:
        """The device of the wrapped preprocessor."""
        return self.data_preprocessor.device

    def to(self, *args, **kwargs) -> 'MultiBranchDataPreprocessor':
        self.data_preprocessor.to(*args, **kwargs)
        return super().to(*args, **kwargs)

    def cuda(self, *args, **kwargs) -> 'MultiBranchDataPreprocessor':
        self.data_preprocessor.cuda(*args, **kwargs)
        return super().cuda(*args, **kwargs)

    def cpu(self, *args, **kwargs) -> 'MultiBranchDataPreprocessor':
        self.data_preprocessor.cpu(*args, **kwargs)
        return super().cpu(*args, **kwargs)
