# `--schedule full`: the setting to publish with on a GPU, 256x256 slices,
# 20000 stage-2 and 8000 stage-1 iterations, 8 labelled slices per batch.
# A schedule of tools/benchmark/ssl_benchmark.py, merged onto each method's
# template config (tools/benchmark/ssl_bench/schedules.py): the top-level
# param_scheduler, train_cfg and default_hooks go to every stage-2 and
# supervised cell, `stage1` to the stage-1 runs. `img_size` is the square
# size of every resize and crop, `batch_size` the labelled slices per batch
# (an SSL batch adds as many unlabelled ones), `rampup_iters` the SSL
# unsupervised-loss ramp-up (0.4 of the iterations), `precision` the default
# of --precision.
# Validation at every checkpoint keeps the best-on-val checkpoint (val cases
# only; `mDice` of the network tested) beside the last one; validating
# changes no training result (ValRandomStateHook).
img_size = 256
batch_size = 8
rampup_iters = 8000
precision = 'fp32'
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=50),
    dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=50,
         end=20000, by_epoch=False),
]
train_cfg = dict(max_iters=20000, val_interval=2000)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=2000, max_keep_ckpts=1, save_best='mDice',
                    rule='greater'))
stage1 = dict(
    param_scheduler=[
        dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
             end=50),
        dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=50,
             end=8000, by_epoch=False),
    ],
    train_cfg=dict(max_iters=8000, val_interval=8000),
    default_hooks=dict(
        logger=dict(interval=50),
        checkpoint=dict(interval=1000, max_keep_ckpts=1, save_best=None)))
