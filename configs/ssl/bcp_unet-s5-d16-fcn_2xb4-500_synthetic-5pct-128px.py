# BCP (bidirectional copy-paste): labelled and unlabelled slices pasted into
# each other, a 2/3-side box per iteration, ground truth and the EMA
# teacher's pseudo labels pasted the same way, after a labelled-only
# pre-training (labelled into labelled) over the first half of the run:
# the UNet needs about half of the benchmark's 2000 iterations to leave the
# all-background plateau on MyoSegmenTUM (docs/results.md), and BCP with
# the ramp-up alone as pre-training collapsed there (docs/results.md).
# Synthetic data, 5% labelled cases, 4 labelled + 4 unlabelled slices per
# batch, 500 iterations at 128x128.
_base_ = [
    '../_base_/models/semi_unet_fcn.py',
    '../_base_/datasets/spine_synthetic-128px_semi.py',
    '../_base_/schedules/semi_500.py'
]
model = dict(
    ssl_strategy=dict(
        type='BidirectionalCopyPaste', patch_ratio=2 / 3,
        unlabelled_weight=0.5, pretrain_ratio=0.5))
