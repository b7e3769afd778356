# Stage 1 on the labelled 5% of MyoSegmenTUM (L1-L5 vertebral bodies) at
# native 224x224.
_base_ = [
    '../_base_/models/cps4_vlm_r18.py',
    '../_base_/datasets/spine_myosegmentum_vb.py',
    '../_base_/schedules/vlm_1k.py'
]
model = dict(
    prompt=dict(
        prompt_file='configs/_base_/prompts/vertebral_bodies_l1_l5.json'))
train_dataloader = dict(
    batch_size=4, dataset=dict(split='splits/seed0_5pct.json'))
