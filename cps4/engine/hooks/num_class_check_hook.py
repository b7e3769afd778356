"""Check that the decode head and the dataset agree on the classes."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS


@HOOKS.register_module()
class NumClassCheckHook(Hook):
    """Fail early when the model's classes differ from the dataset's.

    Checks ``num_classes`` of every decode head, and calls
    ``model.check_classes(classes)`` when the model has one (the text-guided
    models compare their class prompts with the dataset's class names).
    Without this check a mismatch surfaces as an index error deep inside a
    loss or as a silently wrong metric.
    """

    def _check(self, runner, dataset) -> None:
        classes = dataset.metainfo.get('classes')
        if classes is None:
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if hasattr(model, 'check_classes'):
            model.check_classes(classes)
        for name, module in model.named_modules():
            num = getattr(module, 'num_classes', None)
            if not isinstance(num, int) or not name.endswith('decode_head'):
                continue
            if num != len(classes):
                raise ValueError(
                    f'{name}.num_classes = {num} but the dataset '
                    f'({type(dataset).__name__}) has {len(classes)} classes '
                    f'{tuple(classes)}; set --cfg-options model.{name}.'
                    f'num_classes={len(classes)} or fix the config.')

    def before_train(self, runner) -> None:
        """Check against the training dataset."""
        self._check(runner, runner.train_dataloader.dataset)

    def before_val(self, runner) -> None:
        """Check against the validation dataset."""
        self._check(runner, runner.val_dataloader.dataset)

    def before_test(self, runner) -> None:
        """Check against the test dataset."""
        self._check(runner, runner.test_dataloader.dataset)
