from .spine_seg_visualizer import SpineSegVisualizer

__all__ = ['SpineSegVisualizer']
