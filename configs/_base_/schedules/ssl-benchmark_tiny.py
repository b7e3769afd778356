# `--schedule tiny`: 64x64 slices, 4 iterations per stage; it only checks
# that the harness runs.
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
img_size = 64
batch_size = 2
rampup_iters = 2
precision = 'fp32'
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=1),
    dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=1,
         end=4, by_epoch=False),
]
train_cfg = dict(max_iters=4, val_interval=2)
default_hooks = dict(
    logger=dict(interval=4),
    checkpoint=dict(interval=2, max_keep_ckpts=1, save_best='mDice',
                    rule='greater'))
stage1 = dict(
    param_scheduler=[
        dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
             end=1),
        dict(type='PolyLR', eta_min=1e-5, power=0.9, begin=1,
             end=4, by_epoch=False),
    ],
    train_cfg=dict(max_iters=4, val_interval=4),
    default_hooks=dict(
        logger=dict(interval=4),
        checkpoint=dict(interval=2, max_keep_ckpts=1, save_best=None)))
