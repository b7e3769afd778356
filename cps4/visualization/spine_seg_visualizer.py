"""Side-by-side panels of a slice and its label maps."""
from typing import Dict, Optional, Sequence

import cv2
import numpy as np
from mmengine.dist import master_only
from mmseg.registry import VISUALIZERS
from mmseg.structures import SegDataSample
from mmseg.visualization import SegLocalVisualizer


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) from a grey or colour image of any range."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] > 4:
        image = image.transpose(1, 2, 0)  # (C, H, W) tensor layout
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.dtype != np.uint8:
        image = image.astype(np.float32)
        lo, hi = float(image.min()), float(image.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        image = np.rint((image - lo) * scale).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    return np.ascontiguousarray(image[..., :3])


@VISUALIZERS.register_module()
class SpineSegVisualizer(SegLocalVisualizer):
    """Draws ``image | ground truth | prediction`` panels for each sample.

    mmseg's :class:`SegLocalVisualizer` shows the ground truth and the
    prediction as two overlays; for grey MR slices the plain image beside
    them is what a reader needs to judge a boundary, so it comes first.
    Each panel has a title; classes are coloured with the dataset palette
    and pixels outside the valid region (label 255 or a zero mask) are
    drawn dark grey. :meth:`draw_panels` is also used by
    :class:`PseudoLabelVisualizationHook` for the pseudo labels of stage 2.

    Args:
        name (str): Instance name. Defaults to 'visualizer'.
        alpha (float): Opacity of the label colours. Defaults to 0.5.
        **kwargs: Passed to :class:`SegLocalVisualizer`.
    """

    def __init__(self, name: str = 'visualizer', alpha: float = 0.5,
                 **kwargs) -> None:
        super().__init__(name=name, alpha=alpha, **kwargs)

    def _palette(self, num: int) -> np.ndarray:
        palette = (self.dataset_meta or {}).get('palette')
        if palette is None or len(palette) < num:
            rng = np.random.RandomState(0)
            palette = rng.randint(0, 256, size=(max(num, 1), 3)).tolist()
        return np.asarray(palette, dtype=np.float32)

    def overlay(self, image: np.ndarray, labels: np.ndarray,
                valid: Optional[np.ndarray] = None) -> np.ndarray:
        """Colour the foreground classes of ``labels`` over ``image``."""
        rgb = _as_rgb(image).astype(np.float32)
        labels = np.asarray(labels)
        if labels.shape != rgb.shape[:2]:
            labels = cv2.resize(labels.astype(np.uint8),
                                rgb.shape[1::-1],
                                interpolation=cv2.INTER_NEAREST)
            if valid is not None:
                valid = cv2.resize(valid.astype(np.uint8), rgb.shape[1::-1],
                                   interpolation=cv2.INTER_NEAREST) > 0
        ignore = labels == 255
        if valid is not None:
            ignore |= ~np.asarray(valid, dtype=bool)
        fg = (labels > 0) & ~ignore
        palette = self._palette(int(labels[fg].max(initial=0)) + 1)
        colour = palette[np.where(fg, labels, 0)]
        out = rgb.copy()
        out[fg] = (1 - self.alpha) * rgb[fg] + self.alpha * colour[fg]
        out[ignore] = 0.3 * rgb[ignore] + 0.7 * 64
        return np.rint(out).astype(np.uint8)

    def draw_panels(self, image: np.ndarray,
                    label_maps: Dict[str, np.ndarray],
                    valid: Optional[Dict[str, np.ndarray]] = None,
                    title_image: str = 'image') -> np.ndarray:
        """``image`` then one overlay per named label map, side by side.

        Args:
            image (np.ndarray): The slice, (H, W), (H, W, C) or (C, H, W).
            label_maps (dict[str, np.ndarray]): Title -> (H, W) class map.
            valid (dict[str, np.ndarray], optional): Title -> (H, W) mask of
                the pixels that count (e.g. kept pseudo labels).
            title_image (str): Title of the image panel.

        Returns:
            np.ndarray: uint8 RGB (H + title, W * (1 + len(label_maps)), 3).
        """
        valid = valid or {}
        rgb = _as_rgb(image)
        panels = [(title_image, rgb)] + [
            (name, self.overlay(rgb, lab, valid.get(name)))
            for name, lab in label_maps.items()
        ]
        return np.concatenate([self._titled(t, p) for t, p in panels],
                              axis=1)

    @staticmethod
    def _titled(title: str, panel: np.ndarray) -> np.ndarray:
        h, w = panel.shape[:2]
        scale = max(0.3, min(1.0, w / 320))
        bar_h = int(22 * scale) + 4
        bar = np.full((bar_h, w, 3), 255, dtype=np.uint8)
        cv2.putText(bar, title, (3, bar_h - 6), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5 * scale, (0, 0, 0), 1, cv2.LINE_AA)
        return np.concatenate([bar, panel], axis=0)

    @master_only
    def add_datasample(self,
                       name: str,
                       image: np.ndarray,
                       data_sample: Optional[SegDataSample] = None,
                       draw_gt: bool = True,
                       draw_pred: bool = True,
                       show: bool = False,
                       wait_time: float = 0,
                       out_file: Optional[str] = None,
                       step: int = 0,
                       with_labels: Optional[bool] = False) -> None:
        """Draw ``image | ground truth | prediction`` and store it.

        Arguments as in :meth:`SegLocalVisualizer.add_datasample`; the class
        names are not written on the overlays (``with_labels`` is ignored),
        the palette tells them apart.
        """
        maps = {}
        if data_sample is not None:
            if draw_gt and 'gt_sem_seg' in data_sample:
                maps['ground truth'] = _label_map(data_sample.gt_sem_seg)
            if draw_pred and 'pred_sem_seg' in data_sample:
                maps['prediction'] = _label_map(data_sample.pred_sem_seg)
        drawn = self.draw_panels(image, maps)
        if show:
            self.show(drawn, win_name=name, wait_time=wait_time)
        if out_file is not None:
            cv2.imwrite(out_file, drawn[..., ::-1])
        else:
            self.add_image(name, drawn, step)


def _label_map(pixel_data) -> np.ndarray:
    data = pixel_data.data
    if hasattr(data, 'cpu'):
        data = data.cpu().numpy()
    data = np.asarray(data)
    return data[0] if data.ndim == 3 else data


__all__: Sequence[str] = ['SpineSegVisualizer']
