# cps4-mean-teacher_..._reliability.py with the fused pseudo labels put in
# anatomical order (AnatomicalOrderRefiner) before the student learns them.
_base_ = [
    '../_base_/models/cps4_semi_unet_fcn_reliability.py',
    '../_base_/datasets/spine_synthetic-128px_semi.py',
    '../_base_/schedules/semi_500.py'
]
model = dict(
    ssl_strategy=dict(type='MeanTeacher'),
    pseudo_label_refiner=dict(type='AnatomicalOrderRefiner'))
