"""Validation loop that scores both networks of a semi-supervised model."""
from typing import Dict, Sequence

from mmengine.model import is_model_wrapper
from mmengine.runner import ValLoop
from mmseg.registry import LOOPS


@LOOPS.register_module()
class TeacherStudentValLoop(ValLoop):
    """Run validation once per network and report both.

    Metrics come back prefixed, e.g. ``teacher/mDice`` and
    ``student/mDice``, plus ``mDice``: that of the network the model is
    tested with (``semi_test_cfg.predict_on``), so ``save_best='mDice'``
    keeps the best checkpoint of the tested network, as for a supervised
    model. ``semi_test_cfg.predict_on`` is restored afterwards.

    Args:
        runner, dataloader, evaluator, fp16: As in mmengine's ``ValLoop``.
        networks (Sequence[str]): Which networks to score. Defaults to
            ('teacher', 'student').
    """

    def __init__(self,
                 runner,
                 dataloader,
                 evaluator,
                 fp16: bool = False,
                 networks: Sequence[str] = ('teacher', 'student')) -> None:
        super().__init__(runner, dataloader, evaluator, fp16)
        bad = [n for n in networks if n not in ('teacher', 'student')]
        if bad or not networks:
            raise ValueError(f'TeacherStudentValLoop: networks must be from '
                             f"('teacher', 'student'), got {list(networks)}")
        self.networks = list(networks)

    def run(self) -> Dict[str, float]:
        model = self.runner.model
        if is_model_wrapper(model):
            model = model.module
        if not hasattr(model, 'semi_test_cfg'):
            raise AttributeError(
                'TeacherStudentValLoop needs a SemiBaseSegmentor; use '
                "val_cfg=dict(type='ValLoop') for other models.")
        self.runner.call_hook('before_val')
        self.runner.call_hook('before_val_epoch')
        original = model.semi_test_cfg['predict_on']
        metrics = dict()
        try:
            for net in self.networks:
                model.semi_test_cfg['predict_on'] = net
                self.runner.model.eval()
                self.val_loss.clear()
                for idx, data_batch in enumerate(self.dataloader):
                    self.run_iter(idx, data_batch)
                result = self.evaluator.evaluate(len(self.dataloader.dataset))
                metrics.update({f'{net}/{k}': v for k, v in result.items()})
        finally:
            model.semi_test_cfg['predict_on'] = original
        if f'{original}/mDice' in metrics:
            metrics['mDice'] = metrics[f'{original}/mDice']
        self.runner.call_hook('after_val_epoch', metrics=metrics)
        self.runner.call_hook('after_val')
        return metrics
