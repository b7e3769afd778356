# SSL benchmark, CPS4 stage 1: the vision-text model on the labelled cases
# at 128x128, the resolution stage 2 runs at (its weak views are what the
# VLM sees). tools/benchmark/ssl_benchmark.py sets data root, split, prompt
# file, image size and schedule.
_base_ = [
    '../_base_/models/cps4_vlm_r18.py',
    '../_base_/datasets/spine_synthetic-128px.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_1k.py'
]
train_dataloader = dict(batch_size=4)
optim_wrapper = dict(optimizer=dict(lr=2e-3))
default_hooks = dict(logger=dict(interval=50))
