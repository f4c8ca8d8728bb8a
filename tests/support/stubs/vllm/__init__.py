"""CPU test stub for vllm: just the names openrlhf imports at module level."""

__version__ = "0.29.0"


class SamplingParams:
    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)
