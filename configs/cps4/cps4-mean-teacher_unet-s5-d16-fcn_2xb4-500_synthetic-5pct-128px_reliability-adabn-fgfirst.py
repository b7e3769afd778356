# cps4-mean-teacher_..._reliability-adabn.py whose fused target gives its
# foreground mass to the likeliest foreground class: background is decided
# against the foreground as a whole, so a vertebra the teacher and the VLM
# name differently (neighbouring levels) stays a vertebra.
_base_ = [
    '../_base_/models/cps4_semi_unet_fcn_reliability.py',
    '../_base_/datasets/spine_synthetic-128px_semi.py',
    '../_base_/schedules/semi_500.py'
]
model = dict(
    ssl_strategy=dict(type='MeanTeacher'),
    vlm_adabn_iters=200,
    fusion=dict(foreground_first=True))
