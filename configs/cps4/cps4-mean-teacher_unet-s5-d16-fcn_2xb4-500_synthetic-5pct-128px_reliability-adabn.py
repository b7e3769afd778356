# cps4-mean-teacher_..._reliability.py with AdaBN: the VLM's BatchNorm
# statistics (from the labelled slices of stage 1) are re-estimated on the
# weak unlabelled views of the first 200 iterations.
_base_ = [
    '../_base_/models/cps4_semi_unet_fcn_reliability.py',
    '../_base_/datasets/spine_synthetic-128px_semi.py',
    '../_base_/schedules/semi_500.py'
]
model = dict(ssl_strategy=dict(type='MeanTeacher'), vlm_adabn_iters=200)
