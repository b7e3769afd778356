# Supervised-only reference inside the semi-supervised framework.
_base_ = ['./mean-teacher_unet-s5-d16_fcn_2x4-500_vb-5pct-160px.py']
model = dict(ssl_strategy=dict(_delete_=True, type='SupervisedOnly'))
