# Supervised-only reference inside the semi-supervised framework: same
# batches, schedule and EMA teacher as the SSL configs, unlabelled half unused.
_base_ = ['./mean-teacher_unet-s5-d16_fcn_2x4-500_synthetic-5pct-128px.py']
model = dict(ssl_strategy=dict(_delete_=True, type='SupervisedOnly'))
