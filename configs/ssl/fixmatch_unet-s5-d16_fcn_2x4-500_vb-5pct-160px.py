# FixMatch: confident weak-view pseudo labels learned on the strong view.
_base_ = ['./mean-teacher_unet-s5-d16_fcn_2x4-500_vb-5pct-160px.py']
model = dict(
    ssl_strategy=dict(_delete_=True, type='FixMatch'),
    semi_train_cfg=dict(pseudo_threshold=0.95, cutmix_prob=0.5))
