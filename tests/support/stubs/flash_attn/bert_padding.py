import torch  # noqa: F401

# transformers 5.x ships pure-torch equivalents of flash_attn's padding helpers.
from transformers.modeling_flash_attention_utils import _pad_input as pad_input  # noqa: F401
from transformers.modeling_flash_attention_utils import _unpad_input as unpad_input  # noqa: F401
from einops import rearrange  # noqa: F401  (openrlhf.models.ring_attn_utils imports it from here)


def index_first_axis(tensor, indices):
    """flash_attn's semantics: ``tensor`` is already (total, ...); pick rows. (transformers' ``_index_first_axis``
    flattens the first two axes again, which drops the trailing axis OpenRLHF passes.)"""
    return tensor[indices]
