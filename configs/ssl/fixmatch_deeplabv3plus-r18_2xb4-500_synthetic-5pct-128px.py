# FixMatch with DeepLabV3+ R-18 as student/teacher: only the model _base_
# differs from the UNet configs (semi_deeplabv3plus_r18.py).
_base_ = [
    '../_base_/models/semi_deeplabv3plus_r18.py',
    '../_base_/datasets/spine_synthetic-128px_semi.py',
    '../_base_/schedules/semi_500.py'
]
model = dict(
    ssl_strategy=dict(type='FixMatch'),
    semi_train_cfg=dict(pseudo_threshold=0.95, cutmix_prob=0.5))
