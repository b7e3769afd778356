# Fusion-rule ablation: keep the teacher's pseudo label only where the
# stage-1 VLM names the same class (AgreementFusion instead of the
# product).
# Stage 1 and its checkpoint as for
# cps4-fixmatch_unet-s5-d16-fcn_2xb4-500_synthetic-5pct-128px.py.
_base_ = [
    '../_base_/models/cps4_semi_unet_fcn.py',
    '../_base_/datasets/spine_synthetic-128px_semi.py',
    '../_base_/schedules/semi_500.py'
]
model = dict(
    ssl_strategy=dict(type='FixMatch'),
    semi_train_cfg=dict(pseudo_threshold=0.95, cutmix_prob=0.5),
    fusion=dict(_delete_=True, type='AgreementFusion'))
