# cps4-mean-teacher_..._reliability.py with the fused pseudo labels put in
# anatomical order (AnatomicalOrderRefiner) before the student learns them.
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
    pseudo_label_refiner=dict(type='AnatomicalOrderRefiner'))
