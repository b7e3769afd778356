# Semi-supervised wrapper (student + EMA teacher) around the light UNet.
# Swap the network by basing on another semi_*.py model file.
_base_ = ['./unet_fcn.py']
model = dict(
    _delete_=True,
    type='SemiBaseSegmentor',
    segmentor={{_base_.model}},
    data_preprocessor=dict(
        type='MultiBranchDataPreprocessor',
        data_preprocessor={{_base_.data_preprocessor}}),
    ssl_strategy=dict(type='MeanTeacher'),
    semi_train_cfg=dict(
        sup_weight=1.0,
        unsup_weight=1.0,
        rampup_iters=200,
        pseudo_threshold=0.0,
        cutmix_prob=0.0,
        log_pseudo_quality=True),
    semi_test_cfg=dict(predict_on='teacher'))
