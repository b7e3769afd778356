"""Pictures of the pseudo labels during semi-supervised training."""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmseg.registry import HOOKS

from ...models.segmentors.semi_base_segmentor import SNAPSHOT_KEY


@HOOKS.register_module()
class PseudoLabelVisualizationHook(Hook):
    """Store, every ``interval`` iterations, one unlabelled slice beside its
    pseudo labels.

    The panels are the weak view, each named label map of the segmentor
    (``teacher``; under CPS4 also ``vlm`` and ``fused``), the final target
    with the discarded pixels greyed out (``kept``) and, when the
    unlabelled samples carry a hidden ground truth, that ground truth. The
    picture goes to every backend of the runner's visualizer as image
    ``pseudo_labels`` (``vis_data/vis_image/pseudo_labels_<iter>.png`` with
    the local backend, the Images tab with TensorBoard).

    Needs a visualizer with ``draw_panels`` (:class:`SpineSegVisualizer`,
    the default of ``configs/_base_/default_runtime.py``) and a
    segmentor that publishes a snapshot in the MessageHub under
    ``pseudo_label_snapshot`` (:class:`SemiBaseSegmentor` and its
    subclasses).

    Args:
        interval (int): Draw every this many iterations. Defaults to 500.
    """

    priority = 'LOW'

    def __init__(self, interval: int = 500) -> None:
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        self.interval = interval

    def before_train(self, runner: Runner) -> None:
        if not hasattr(runner.visualizer, 'draw_panels'):
            raise TypeError(
                'PseudoLabelVisualizationHook needs '
                "visualizer=dict(type='SpineSegVisualizer', ...); the config "
                f'uses {type(runner.visualizer).__name__}.')

    def after_train_iter(self,
                         runner: Runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if not self.every_n_train_iters(runner, self.interval):
            return
        snap = runner.message_hub.get_info(SNAPSHOT_KEY)
        if snap is None:
            return
        maps = {k: v.cpu().numpy() for k, v in snap['maps'].items()}
        maps['kept'] = snap['target'].cpu().numpy()
        valid = dict(kept=snap['valid'].cpu().numpy())
        if snap.get('gt') is not None:
            maps['hidden ground truth'] = snap['gt'].cpu().numpy()
        picture = runner.visualizer.draw_panels(
            snap['image'].float().cpu().numpy(), maps, valid,
            title_image=f'weak view, iter {runner.iter + 1}')
        runner.visualizer.add_image('pseudo_labels', picture,
                                    step=runner.iter + 1)
