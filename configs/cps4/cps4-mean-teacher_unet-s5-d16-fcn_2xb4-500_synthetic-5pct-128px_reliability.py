# Fusion that follows the more reliable expert per class: the VLM counts up
# to ten times the teacher on a class where its maps are the more coherent
# ones (share of the class in its largest region per slice), and nothing
# where the teacher's are, which leaves plain Mean Teacher.
# Stage 1 and its checkpoint as for
# cps4-mean-teacher_unet-s5-d16-fcn_2xb4-500_synthetic-5pct-128px.py.
_base_ = [
    '../_base_/models/cps4_semi_unet_fcn.py',
    '../_base_/datasets/spine_synthetic-128px_semi.py',
    '../_base_/schedules/semi_500.py'
]
model = dict(
    ssl_strategy=dict(type='MeanTeacher'),
    fusion=dict(
        _delete_=True, type='ReliabilityWeightedFusion', vlm_weight=10.0,
        margin=0.1, momentum=0.9))
