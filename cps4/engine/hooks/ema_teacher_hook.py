"""Exponential-moving-average update of the teacher from the student."""
from typing import Optional

import torch
import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from mmseg.registry import HOOKS


def ema_update(teacher: nn.Module,
               student: nn.Module,
               momentum: float,
               average_buffers: bool = True) -> None:
    """``teacher <- (1 - momentum) * teacher + momentum * student``.

    Floating-point parameters (and, with ``average_buffers``, floating
    buffers) are averaged; the other buffers, such as batch-norm's
    ``num_batches_tracked``, are copied.

    Args:
        teacher (nn.Module): Updated in place.
        student (nn.Module): Same architecture as ``teacher``.
        momentum (float): Weight of the student, in [0, 1].
        average_buffers (bool): Average floating buffers too; False copies
            every buffer. Defaults to True.
    """
    t_state = teacher.state_dict()
    s_state = student.state_dict()
    if t_state.keys() != s_state.keys():
        missing = sorted(set(t_state) ^ set(s_state))[:5]
        raise KeyError(f'teacher and student differ in parameters: {missing}')
    # names are only needed to tell parameters from buffers
    params = (set() if average_buffers else
              {name for name, _ in teacher.named_parameters()})
    with torch.no_grad():
        for name, t in t_state.items():
            s = s_state[name].detach()
            average = t.dtype.is_floating_point and (average_buffers
                                                     or name in params)
            if average:
                t.mul_(1 - momentum).add_(s.to(t.dtype), alpha=momentum)
            else:
                t.copy_(s)


@HOOKS.register_module()
class EMATeacherHook(Hook):
    """Keep ``model.teacher`` an exponential moving average of the student.

    Before training (unless resuming) the teacher is set to the student;
    after every ``interval`` training iterations
    ``teacher <- (1 - momentum) * teacher + momentum * student`` over
    parameters and floating buffers. This hook is the only thing that
    changes the teacher.

    Args:
        momentum (float): Weight of the student in each update. Defaults to
            0.001 (a teacher averaging over about 1000 iterations).
        interval (int): Update every this many iterations. Defaults to 1.
        skip_buffers (bool): Copy buffers instead of averaging them.
            Defaults to False.
    """

    priority = 'NORMAL'

    def __init__(self,
                 momentum: float = 0.001,
                 interval: int = 1,
                 skip_buffers: bool = False) -> None:
        if not 0 < momentum <= 1:
            raise ValueError(f'EMATeacherHook: momentum must be in (0, 1], '
                             f'got {momentum}')
        if interval < 1:
            raise ValueError(f'EMATeacherHook: interval must be >= 1, got '
                             f'{interval}')
        self.momentum = momentum
        self.interval = interval
        self.skip_buffers = skip_buffers

    @staticmethod
    def _model(runner: Runner) -> nn.Module:
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        if not (hasattr(model, 'teacher') and hasattr(model, 'student')):
            raise AttributeError(
                f'EMATeacherHook needs a model with `teacher` and `student`, '
                f'got {type(model).__name__}; use a SemiBaseSegmentor.')
        return model

    def before_train(self, runner: Runner) -> None:
        """Start the teacher from the student on a fresh run."""
        model = self._model(runner)
        if runner.iter == 0:
            ema_update(model.teacher, model.student, 1.0)

    def after_train_iter(self,
                         runner: Runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        """Average the student into the teacher."""
        if (runner.iter + 1) % self.interval != 0:
            return
        model = self._model(runner)
        ema_update(model.teacher, model.student, self.momentum,
                   average_buffers=not self.skip_buffers)
