"""Logits and probabilities of a plain mmseg segmentor at the input size."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.models.utils import resize
from torch import Tensor


def num_classes_of(net: nn.Module) -> int:
    """Number of classes a segmentor predicts.

    Args:
        net (nn.Module): An mmseg segmentor (with ``decode_head``) or a
            model with a ``num_classes`` attribute.

    Returns:
        int: The number of classes.
    """
    head = getattr(net, 'decode_head', None)
    if head is not None:
        return int(head.num_classes)
    if hasattr(net, 'num_classes'):
        return int(net.num_classes)
    raise AttributeError(f'{type(net).__name__} has neither a '
                         'decode_head nor num_classes.')


def segmentor_logits(net: nn.Module,
                     inputs: Tensor,
                     feature_dropout: float = 0.0) -> Tensor:
    """Class logits of a segmentor at the input size.

    Args:
        net (nn.Module): An mmseg segmentor (student, teacher or peer).
        inputs (Tensor): Normalised images (B, C, H, W).
        feature_dropout (float): Channel dropout on every encoder feature
            before the decode head (UniMatch's feature perturbation); needs
            a segmentor with ``decode_head``.

    Returns:
        Tensor: (B, K, H, W) logits, in float32 also under mixed precision
        (they feed the losses and the pseudo labels).
    """
    head = getattr(net, 'decode_head', None)
    if head is not None:
        feats = net.extract_feat(inputs)
        if feature_dropout > 0:
            feats = [
                F.dropout2d(f, feature_dropout, training=True) for f in feats
            ]
        out = head.forward(feats)
    elif feature_dropout > 0:
        raise TypeError(f'feature_dropout needs a segmentor with a '
                        f'decode_head; {type(net).__name__} has none.')
    else:
        out = net._forward(inputs)
    return resize(out.float(), size=inputs.shape[2:], mode='bilinear',
                  align_corners=False)


def predict_probs(net: nn.Module,
                  inputs: Tensor,
                  eval_mode: bool = True) -> Tensor:
    """Softmax of a segmentor on ``inputs`` without gradient.

    Args:
        net (nn.Module): The predicting segmentor.
        inputs (Tensor): Normalised images (B, C, H, W).
        eval_mode (bool): Run ``net`` in eval mode (batch-norm running
            statistics, no dropout), as for the EMA teacher; the two
            students of CPS predict in training mode.

    Returns:
        Tensor: (B, K, H, W) probabilities.
    """
    was_training = net.training
    if eval_mode:
        net.eval()
    with torch.no_grad():
        probs = segmentor_logits(net, inputs).softmax(1)
    net.train(was_training)
    return probs
