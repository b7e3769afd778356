# Stage-1 (CPS4VLM) training, 1k iterations: the default runtime on
# schedule_1k.py with the stage-1 learning rate.
_base_ = ['../default_runtime.py', './schedule_1k.py']
optim_wrapper = dict(optimizer=dict(lr=2e-3))
default_hooks = dict(logger=dict(interval=50))
