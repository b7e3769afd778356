# MyoSegmenTUM vertebral bodies resized to 160x160 (the CPU-sized setting of
# the stage-1 seed tables); predictions are scored at the original size.
_base_ = ['./spine_myosegmentum_vb.py']
scale = (160, 160)
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='grayscale'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=scale, ratio_range=(0.85, 1.15),
         keep_ratio=True),
    dict(type='RandomRotate', prob=0.5, degree=10, pad_val=0,
         seg_pad_val=0),
    dict(type='RandomCrop', crop_size=scale),
    dict(type='PackSegInputs', meta_keys={{_base_.meta_keys}}),
]
test_pipeline = [
    dict(type='LoadImageFromFile', color_type='grayscale'),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs', meta_keys={{_base_.meta_keys}}),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
