# transformers 5.x ships pure-torch equivalents of flash_attn's padding helpers.
from transformers.modeling_flash_attention_utils import _index_first_axis as index_first_axis  # noqa: F401
from transformers.modeling_flash_attention_utils import _pad_input as pad_input  # noqa: F401
from transformers.modeling_flash_attention_utils import _unpad_input as unpad_input  # noqa: F401
from einops import rearrange  # noqa: F401  (openrlhf.models.ring_attn_utils imports it from here)
