# Fusion-rule ablation: a confidence-weighted vote in which the stage-1 VLM
# counts ten times the teacher (ConfidenceWeightedFusion instead of the
# product). Chosen for the real-data benchmark on the VB val cases.
_base_ = ['./cps4-mean-teacher_unet-s5-d16_fcn_2x4-500_synthetic-5pct-128px.py']
model = dict(fusion=dict(_delete_=True, type='ConfidenceWeightedFusion',
                         vlm_weight=10.0))
