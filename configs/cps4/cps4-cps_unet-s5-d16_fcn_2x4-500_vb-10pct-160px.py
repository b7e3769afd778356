# CPS4 stage 2 on top of cps; train stage 1 first:
#   python tools/train.py configs/cps4/cps4-vlm_r18_1xb4-1k_vb-160px-10pct.py
_base_ = ['../ssl/cps_unet-s5-d16_fcn_2x4-500_vb-10pct-160px.py']
model = dict(
    type='CPS4SemiSegmentor',
    vlm=dict(
        config='configs/cps4/cps4-vlm_r18_1xb4-1k_vb-160px-10pct.py',
        checkpoint='work_dirs/cps4-vlm_r18_1xb4-1k_vb-160px-10pct/iter_1000.pth'),
    fusion=dict(type='ProductFusion', alpha=1.0))
