# CPS4 stage 2 on top of unimatch; train stage 1 first:
#   python tools/train.py configs/cps4/cps4-vlm_r18_1xb4-1k_synthetic-5pct.py
_base_ = [
    '../ssl/unimatch_unet-s5-d16_fcn_2x4-500_synthetic-5pct-128px.py',
    '../_base_/models/cps4_vlm_r18_net.py'
]
vlm = _base_.vlm
# the stage-1 checkpoint comes from the command line:
#   --cfg-options model.vlm.init_cfg.checkpoint=STAGE1_WORK_DIR/iter_1000.pth
vlm.init_cfg = dict(type='Pretrained', checkpoint=None)
model = dict(
    type='CPS4SemiSegmentor',
    vlm=vlm,
    fusion=dict(type='ProductFusion', alpha=1.0))
