# Stage 1 of CPS4 with a ResNet-50 image encoder (cps4_vlm_r50_net.py).
_base_ = ['./cps4_vlm_r50_net.py']
model = _base_.vlm
