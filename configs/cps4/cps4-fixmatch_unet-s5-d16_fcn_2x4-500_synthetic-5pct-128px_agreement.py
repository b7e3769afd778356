# Fusion-rule ablation: keep the teacher's pseudo label only where the
# stage-1 VLM names the same class (AgreementFusion instead of the product).
_base_ = ['./cps4-fixmatch_unet-s5-d16_fcn_2x4-500_synthetic-5pct-128px.py']
model = dict(fusion=dict(_delete_=True, type='AgreementFusion'))
