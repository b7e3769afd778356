# Fusion-rule ablation: a confidence-weighted vote in which the stage-1 VLM
# counts ten times the teacher (ConfidenceWeightedFusion instead of the
# product). Chosen for the real-data benchmark on the VB val cases.
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
        _delete_=True, type='ConfidenceWeightedFusion', vlm_weight=10.0))
