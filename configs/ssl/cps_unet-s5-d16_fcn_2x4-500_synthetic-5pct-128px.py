# Cross Pseudo Supervision: two students label the strong view for each other.
_base_ = ['./mean-teacher_unet-s5-d16_fcn_2x4-500_synthetic-5pct-128px.py']
model = dict(
    ssl_strategy=dict(_delete_=True, type='CrossPseudoSupervision'),
    semi_train_cfg=dict(pseudo_threshold=0.0, cutmix_prob=0.5))
