# Stage 1 of CPS4: the vision-text model of cps4_vlm_r18_net.py (ResNet-18
# image encoder + all-MiniLM-L6-v2 text encoder) trained on the labelled
# slices.
_base_ = ['./cps4_vlm_r18_net.py']
model = _base_.vlm
