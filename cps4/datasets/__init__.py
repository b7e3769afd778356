from .spine_slice_dataset import SpineSliceDataset

__all__ = ['SpineSliceDataset']
