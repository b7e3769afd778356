# CPS4 stage 2 whose VLM weight follows, per class, the more reliable expert
# (ReliabilityWeightedFusion: up to ten times the teacher on a class where
# the VLM's maps are the more coherent ones, nothing where the teacher's
# are, which leaves the base SSL method).
_base_ = ['./cps4_semi_unet_fcn.py']
model = dict(
    fusion=dict(
        _delete_=True, type='ReliabilityWeightedFusion', vlm_weight=10.0,
        margin=0.1, momentum=0.9))
