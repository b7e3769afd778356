# FixMatch: confident weak-view pseudo labels learned on the strong view.
# Synthetic data, 5% labelled cases, 4 labelled + 4 unlabelled slices per
# batch, 500 iterations at 128x128.
_base_ = [
    '../_base_/models/semi_unet_fcn.py',
    '../_base_/datasets/spine_synthetic-128px_semi.py',
    '../_base_/schedules/semi_500.py'
]
model = dict(
    ssl_strategy=dict(type='FixMatch'),
    semi_train_cfg=dict(pseudo_threshold=0.95, cutmix_prob=0.5))
