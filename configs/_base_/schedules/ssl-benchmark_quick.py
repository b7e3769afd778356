# `--schedule quick`: 128x128 slices, 2000 stage-2 and 1000 stage-1
# iterations in bf16; the shortest schedule in which the UNet student leaves
# the all-background plateau on MyoSegmenTUM (chosen on its val cases: 500
# iterations stay there, 1000 reach 25 and 2000 reach 80 val mDice with all
# labels; fp32 vs bf16 over seeds 0-2 in docs/results.md).
# A schedule of tools/benchmark/ssl_benchmark.py, merged onto each method's
# template config (tools/benchmark/ssl_bench/schedules.py): the top-level
# param_scheduler, train_cfg and default_hooks go to every stage-2 and
# supervised cell, `stage1` to the stage-1 runs. `img_size` is the square
# size of every resize and crop, `batch_size` the labelled slices per batch
# (an SSL batch adds as many unlabelled ones), `rampup_iters` the SSL
# unsupervised-loss ramp-up (0.4 of the iterations), `precision` the default
# of --precision. Checkpoints every 500 iterations (written atomically,
# schedule_2k.py): an interrupted cell resumes from the last one
# (tools/benchmark/ssl_bench/runs.py).
# Validation at every checkpoint keeps the best-on-val checkpoint (val cases
# only; `mDice` of the network tested) beside the last one; validating
# changes no training result (ValRandomStateHook).
img_size = 128
batch_size = 4
rampup_iters = 800
precision = 'bf16'
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=50),
    dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=50,
         end=2000, by_epoch=False),
]
train_cfg = dict(max_iters=2000, val_interval=500)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=500, max_keep_ckpts=1, save_best='mDice',
                    rule='greater'))
stage1 = dict(
    param_scheduler=[
        dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
             end=50),
        dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=50,
             end=1000, by_epoch=False),
    ],
    train_cfg=dict(max_iters=1000, val_interval=1000),
    default_hooks=dict(
        logger=dict(interval=50),
        checkpoint=dict(interval=500, max_keep_ckpts=1, save_best=None)))
