# Stage 1 of CPS4 with a MiT-B0 image encoder (cps4_vlm_mit-b0_net.py).
_base_ = ['./cps4_vlm_mit-b0_net.py']
model = _base_.vlm
