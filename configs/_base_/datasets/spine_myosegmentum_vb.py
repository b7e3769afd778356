# MyoSegmenTUM lumbar vertebral bodies (L1-L5), 224x224 sagittal slices:
#   python tools/dataset_converters/nnunet.py ../shared/data/myosegmentum_vb \
#       data/myosegmentum_vb
_base_ = ['./spine_synthetic.py']
# 6 classes with the background: model.decode_head.num_classes=6
data_root = 'data/myosegmentum_vb'
crop_size = (224, 224)
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
