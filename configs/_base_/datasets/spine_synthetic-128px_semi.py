# Labelled + unlabelled synthetic slices at 128x128, mixed 1:1 in every batch.
# Geometry runs before the branch split (views stay pixel-aligned),
# photometry after it, on the strong views only. The unlabelled slices keep
# their labels as hidden ground truth: only PseudoLabelQualityHook reads it.
_base_ = ['./spine_synthetic-128px.py']
split = 'splits/seed0_5pct.json'
branch_field = ['sup', 'unsup_teacher', 'unsup_student', 'unsup_student_2']
geometric = [
    dict(type='RandomResize', scale=(128, 128), ratio_range=(0.9, 1.1),
         keep_ratio=True),
    dict(type='RandomRotate', prob=0.5, degree=10, pad_val=0,
         seg_pad_val=0),
    dict(type='RandomCrop', crop_size=(128, 128)),
]
pack = dict(type='PackSegInputs', meta_keys={{_base_.meta_keys}})
strong = [
    dict(type='RandomIntensityScaleShift', scale_range=(0.75, 1.25),
         shift_range=(-25, 25), prob=0.8),
    dict(type='RandomGamma', gamma_range=(0.6, 1.6), prob=0.5),
    dict(type='RandomGaussianBlur', sigma_range=(0.1, 1.5), prob=0.3),
    dict(type='RandomGaussianNoise', std_range=(0, 12), prob=0.5),
    pack,
]
sup_pipeline = [
    dict(type='LoadImageFromFile', color_type='grayscale'),
    dict(type='LoadAnnotations'),
    *geometric,
    dict(type='MultiBranch', branch_field=branch_field, sup=[pack]),
]
unsup_pipeline = [
    dict(type='LoadImageFromFile', color_type='grayscale'),
    # hidden ground truth, for logging only; none for volumes without a mask
    dict(type='LoadHiddenAnnotations'),
    *geometric,
    dict(type='MultiBranch', branch_field=branch_field,
         unsup_teacher=[pack], unsup_student=strong,
         unsup_student_2=strong),
]
# The two sources, for a leaf that changes one of them; another label ratio
# is the split of both:
#   split = 'splits/seed0_10pct.json'
#   train_dataloader = dict(dataset=dict(datasets=[
#       dict(_base_.labelled_dataset, split=split),
#       dict(_base_.unlabelled_dataset, split=split)]))
#   val_dataloader = dict(dataset=dict(split=split))
#   test_dataloader = dict(dataset=dict(split=split))
labelled_dataset = dict(
    type='SpineSliceDataset', data_root={{_base_.data_root}}, split=split,
    subset='labelled', pipeline=sup_pipeline)
unlabelled_dataset = dict(
    type='SpineSliceDataset', data_root={{_base_.data_root}}, split=split,
    subset='unlabelled', pipeline=unsup_pipeline)
train_dataloader = dict(
    _delete_=True,
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='MultiSourceSampler', batch_size=8,
                 source_ratio=[1, 1]),
    dataset=dict(
        type='ConcatDataset',
        datasets=[labelled_dataset, unlabelled_dataset]))
val_dataloader = dict(dataset=dict(split=split))
test_dataloader = dict(dataset=dict(split=split))
