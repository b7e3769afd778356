from .pixel_text_attention import (HAS_EXTENSION, pixel_text_attention,
                                   pixel_text_attention_reference)

__all__ = [
    'HAS_EXTENSION', 'pixel_text_attention', 'pixel_text_attention_reference'
]
