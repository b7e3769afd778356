# CPS4 stage 2 on Mean Teacher, MyoSegmenTUM L1-L5: the stage-1 VLM's class maps are fused with
# the teacher's probabilities into the pseudo labels. Train stage 1 first
# and pass its checkpoint:
#   python tools/train.py configs/cps4/cps4-vlm_r18_1xb4-1k_vb-5pct-160px.py
#   python tools/train.py configs/cps4/cps4-mean-teacher_unet-s5-d16-fcn_2xb4-500_vb-5pct-160px.py \
#       --cfg-options model.vlm.init_cfg.checkpoint=work_dirs/cps4-vlm_r18_1xb4-1k_vb-5pct-160px/iter_1000.pth
_base_ = [
    '../_base_/models/cps4_semi_unet_fcn.py',
    '../_base_/datasets/spine_myosegmentum_vb-160px_semi.py',
    '../_base_/schedules/semi_500.py'
]
model = dict(
    ssl_strategy=dict(type='MeanTeacher'),
    segmentor=dict(decode_head=dict(num_classes=6)),
    vlm=dict(
        prompt=dict(
            prompt_file='configs/_base_/prompts/vertebral_bodies_l1_l5.json')))
