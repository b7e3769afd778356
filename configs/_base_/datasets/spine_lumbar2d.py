# 20 sagittal lumbar T2 slices (disc, vertebra), 256x256 PNG; one case each:
#   python tools/dataset_converters/png2d.py ../shared/data/lumbar2d \
#       data/lumbar2d --classes background,disc,vertebra
_base_ = ['./spine_synthetic.py']
# 3 classes with the background: model.decode_head.num_classes=3
data_root = 'data/lumbar2d'
crop_size = (256, 256)
train_pipeline = [
    dict(type='LoadImageFromFile', color_type='grayscale'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=crop_size, ratio_range=(0.85, 1.15),
         keep_ratio=True),
    dict(type='RandomRotate', prob=0.5, degree=10, pad_val=0,
         seg_pad_val=0),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='PackSegInputs', meta_keys={{_base_.meta_keys}}),
]
train_dataloader = dict(
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
