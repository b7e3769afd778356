# Ablation of cps4-vlm_r18_1xb4-1k_vb-5pct-160px.py: no-token-loss.
_base_ = [
    '../_base_/models/cps4_vlm_r18.py',
    '../_base_/datasets/spine_myosegmentum_vb-160px.py',
    '../_base_/schedules/vlm_1k.py'
]
model = dict(
    prompt=dict(
        prompt_file='configs/_base_/prompts/vertebral_bodies_l1_l5.json'),
    token_loss=None)
train_dataloader = dict(
    batch_size=4, dataset=dict(split='splits/seed0_5pct.json'))
