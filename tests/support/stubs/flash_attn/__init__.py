"""CPU test stub for flash_attn (the real package needs CUDA). Only what openrlhf imports at module level."""

__version__ = "0.0.0+cpustub"
