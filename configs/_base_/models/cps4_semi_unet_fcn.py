# CPS4 stage 2: the semi-supervised UNet of semi_unet_fcn.py whose pseudo
# labels are fused with the class maps of the stage-1 VLM. The VLM is the
# model stage 1 trains (cps4_vlm_r18_net.py); its weights come from the
# stage-1 run:
#   --cfg-options model.vlm.init_cfg.checkpoint=WORK_DIR/iter_N.pth
# A VLM on another backbone: base on cps4_vlm_r50_net.py or
# cps4_vlm_mit-b0_net.py instead.
_base_ = ['./semi_unet_fcn.py', './cps4_vlm_r18_net.py']
model = dict(
    type='CPS4SemiSegmentor',
    vlm=dict(_base_.vlm, init_cfg=dict(type='Pretrained', checkpoint=None)),
    fusion=dict(type='ProductFusion', alpha=1.0))
