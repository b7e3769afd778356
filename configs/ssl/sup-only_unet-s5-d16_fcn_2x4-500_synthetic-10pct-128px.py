# As sup-only_unet-s5-d16_fcn_2x4-500_synthetic-5pct-128px.py with 10% labelled cases.
_base_ = ['./sup-only_unet-s5-d16_fcn_2x4-500_synthetic-5pct-128px.py']
split = 'splits/seed0_10pct.json'
train_dataloader = dict(
    dataset=dict(datasets=[
        dict(type='SpineSliceDataset', data_root={{_base_.data_root}},
             split=split, subset='labelled',
             pipeline={{_base_.sup_pipeline}}),
        dict(type='SpineSliceDataset', data_root={{_base_.data_root}},
             split=split, subset='unlabelled',
             pipeline={{_base_.unsup_pipeline}}),
    ]))
val_dataloader = dict(dataset=dict(split=split))
test_dataloader = dict(dataset=dict(split=split))
