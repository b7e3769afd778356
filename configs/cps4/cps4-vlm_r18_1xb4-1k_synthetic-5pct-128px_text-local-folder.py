# Text encoder swap: any local transformers folder (a CLIP text tower,
# BiomedCLIP's text side, Bio_ClinicalBERT, ...). Point model_path at it, e.g.
#   --cfg-options model.text_encoder.model_path=checkpoints/Bio_ClinicalBERT
_base_ = [
    '../_base_/models/cps4_vlm_r18.py',
    '../_base_/datasets/spine_synthetic-128px.py',
    '../_base_/schedules/vlm_1k.py'
]
model = dict(
    text_encoder=dict(
        model_path='checkpoints/text_encoder', pretrained=None,
        pooling='cls'))
train_dataloader = dict(
    batch_size=4, dataset=dict(split='splits/seed0_5pct.json'))
