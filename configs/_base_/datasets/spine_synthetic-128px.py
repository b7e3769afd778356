# Synthetic spine slices resized to 128x128 (the CPU-sized setting).
_base_ = ['./spine_synthetic.py']
scale = (128, 128)
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='grayscale'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=scale, ratio_range=(0.9, 1.1),
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
