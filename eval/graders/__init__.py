"""Graders of the evaluation harness. The plug-in contract is in ``base.py``."""

from .base import (  # noqa: F401
    Benchmark,
    Grader,
    GraderConfig,
    PromptOptions,
    SamplingDefaults,
    Verdict,
    register_benchmark,
    register_grader,
)
