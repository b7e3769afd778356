from .pixel_attention_loss import (PixelAttentionLoss,
                                   pixel_attention_loss_terms)
from .soft_dice_loss import SoftDiceLoss, soft_dice_loss
from .token_attention_loss import TokenAttentionLoss, token_attention_target

__all__ = [
    'SoftDiceLoss', 'soft_dice_loss', 'TokenAttentionLoss',
    'token_attention_target', 'PixelAttentionLoss',
    'pixel_attention_loss_terms'
]
