# cps4-mean-teacher_..._reliability.py with AdaBN: the VLM's BatchNorm
# statistics (from the labelled slices of stage 1) are re-estimated on the
# weak unlabelled views of the first 200 iterations.
_base_ = [
    '../_base_/models/cps4_semi_unet_fcn.py',
    '../_base_/datasets/spine_synthetic-128px_semi.py',
    '../_base_/schedules/semi_500.py'
]
model = dict(
    ssl_strategy=dict(type='MeanTeacher'),
    fusion=dict(
        _delete_=True, type='ReliabilityWeightedFusion', vlm_weight=10.0,
        margin=0.1, momentum=0.9),
    vlm_adabn_iters=200)
