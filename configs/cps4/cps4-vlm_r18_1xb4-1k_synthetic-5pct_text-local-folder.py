# Text encoder swap: any local transformers folder (a CLIP text tower,
# BiomedCLIP's text side, Bio_ClinicalBERT, ...). Point model_path at it, e.g.
#   --cfg-options model.text_encoder.model_path=checkpoints/Bio_ClinicalBERT
_base_ = ['./cps4-vlm_r18_1xb4-1k_synthetic-5pct.py']
model = dict(
    text_encoder=dict(
        model_path='checkpoints/text_encoder', pretrained=None,
        pooling='cls'))
