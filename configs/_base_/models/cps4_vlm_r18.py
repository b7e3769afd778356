# Stage 1 of CPS4: ResNet-18 image encoder + all-MiniLM-L6-v2 text encoder.
_base_ = ['./cps4_vlm_r18_net.py']
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[127.5],
    std=[127.5],
    bgr_to_rgb=False,
    pad_val=0,
    seg_pad_val=255,
    size_divisor=32,
    test_cfg=dict(size_divisor=32))
model = dict(data_preprocessor=data_preprocessor, **_base_.vlm)
