# Synthetic sagittal spine MR (19 units + background), converted to slices:
#   python tools/dataset_converters/synthetic.py data/synthetic_raw
#   python tools/dataset_converters/nnunet.py data/synthetic_raw data/synthetic
# `split`: the split file of every loader (relative to data_root); a
# label-ratio leaf sets `train_dataloader = dict(dataset=dict(split=...))`.
# The class count (20 here) is the model's decode_head.num_classes; a leaf on
# another dataset sets it (the SSL benchmark sets it from the converted data).
dataset_type = 'SpineSliceDataset'
data_root = 'data/synthetic'
split = 'splits/seed0_100pct.json'
crop_size = (192, 192)
meta_keys = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape',
             'pad_shape', 'scale_factor', 'flip', 'flip_direction',
             'reduce_zero_label', 'case_id', 'slice_idx', 'n_slices',
             'spacing')
# No vertical flip and no cranio-caudal shuffling: a unit's identity (L3 vs
# L4) is given by its position along the column.
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='grayscale'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=crop_size, ratio_range=(0.85, 1.15),
         keep_ratio=True),
    dict(type='RandomRotate', prob=0.5, degree=10, pad_val=0,
         seg_pad_val=0),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
test_pipeline = [
    dict(type='LoadImageFromFile', color_type='grayscale'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs', meta_keys=meta_keys),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split=split,
        subset='labelled',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split=split,
        subset='val',
        pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split=split,
        subset='test',
        pipeline=test_pipeline))
val_evaluator = dict(type='VolumeDiceMetric')
test_evaluator = dict(type='VolumeDiceMetric', hd95=True)
