# CPS4 stage 2 on FixMatch: the stage-1 VLM's class maps are fused with
# the teacher's probabilities into the pseudo labels. Train stage 1 first
# and pass its checkpoint:
#   python tools/train.py configs/cps4/cps4-vlm_r18_1xb4-1k_synthetic-5pct-128px.py
#   python tools/train.py configs/cps4/cps4-fixmatch_unet-s5-d16-fcn_2xb4-500_synthetic-5pct-128px.py \
#       --cfg-options model.vlm.init_cfg.checkpoint=work_dirs/cps4-vlm_r18_1xb4-1k_synthetic-5pct-128px/iter_1000.pth
# Another SSL strategy: its ssl/ model lines here.
_base_ = [
    '../_base_/models/cps4_semi_unet_fcn.py',
    '../_base_/datasets/spine_synthetic-128px_semi.py',
    '../_base_/schedules/semi_500.py'
]
model = dict(
    ssl_strategy=dict(type='FixMatch'),
    semi_train_cfg=dict(pseudo_threshold=0.95, cutmix_prob=0.5))
