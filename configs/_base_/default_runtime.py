default_scope = 'mmseg'
custom_imports = dict(imports=['cps4'], allow_failed_imports=False)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
# PNGs under the work dir; `tools/train.py --tensorboard` adds
# dict(type='TensorboardVisBackend') for scalars and images in TensorBoard.
vis_backends = [dict(type='LocalVisBackend')]
# no fixed `name`: each Runner then gets its own visualizer (named after its
# experiment) instead of reusing the first one created in the process
visualizer = dict(type='SpineSegVisualizer', vis_backends=vis_backends)
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
# ValRandomStateHook: validating during training never changes its random
# stream, so the weights do not depend on train_cfg.val_interval
custom_hooks = [
    dict(type='NumClassCheckHook'),
    dict(type='InvalidLossHook'),
    dict(type='ValRandomStateHook'),
]
tta_model = None
