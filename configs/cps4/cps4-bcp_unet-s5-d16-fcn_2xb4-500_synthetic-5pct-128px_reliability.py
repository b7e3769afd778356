# CPS4 on BCP: the fused teacher-VLM map is the pseudo label that BCP
# pastes; the VLM's weight follows, per class, the more reliable expert
# (ReliabilityWeightedFusion). Stage 1 and its checkpoint as for
# cps4-mean-teacher_unet-s5-d16-fcn_2xb4-500_synthetic-5pct-128px.py.
_base_ = [
    '../_base_/models/cps4_semi_unet_fcn_reliability.py',
    '../_base_/datasets/spine_synthetic-128px_semi.py',
    '../_base_/schedules/semi_500.py'
]
model = dict(
    ssl_strategy=dict(
        type='BidirectionalCopyPaste', patch_ratio=2 / 3,
        unlabelled_weight=0.5, pretrain_ratio=0.5))
