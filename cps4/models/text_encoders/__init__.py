"""Text encoders that turn class prompts into embeddings."""
from .hf_text_encoder import HFTextEncoder

__all__ = ['HFTextEncoder']
