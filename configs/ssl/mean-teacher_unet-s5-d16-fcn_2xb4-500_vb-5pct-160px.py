# Mean Teacher: the EMA teacher's soft predictions on the weak view are
# the targets of the student on the strong view.
# MyoSegmenTUM (L1-L5), 5% labelled cases, 4 labelled + 4 unlabelled
# slices per batch, 500 iterations at 160x160.
_base_ = [
    '../_base_/models/semi_unet_fcn.py',
    '../_base_/datasets/spine_myosegmentum_vb-160px_semi.py',
    '../_base_/schedules/semi_500.py'
]
model = dict(
    ssl_strategy=dict(type='MeanTeacher'),
    segmentor=dict(decode_head=dict(num_classes=6)))
