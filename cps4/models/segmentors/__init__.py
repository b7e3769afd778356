from .cps4_vlm import CPS4VLM

__all__ = ['CPS4VLM']
