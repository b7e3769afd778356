"""Store a volume in another axis order, as another scanner or export tool
would (shared by the orientation tests of the converters and of infer)."""
import numpy as np


def restore(data, affine, perm, flips):
    """Store ``data`` with its axes permuted by ``perm`` and then flipped
    where ``flips`` says, with the affine that keeps every voxel's world
    position."""
    stored = np.transpose(data, perm)
    to_old = np.zeros((4, 4))
    to_old[3, 3] = 1
    for k, p in enumerate(perm):
        to_old[p, k] = 1
    affine = np.asarray(affine, float) @ to_old
    for k, flip in enumerate(flips):
        if flip:
            stored = np.flip(stored, k)
            f = np.eye(4)
            f[k, k], f[k, 3] = -1, stored.shape[k] - 1
            affine = affine @ f
    return np.ascontiguousarray(stored), affine
