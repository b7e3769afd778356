from .soft_dice_loss import SoftDiceLoss, soft_dice_loss

__all__ = ['SoftDiceLoss', 'soft_dice_loss']
