"""openrlhf-steer's standalone evaluation harness (installed as ``openrlhf_steer_eval``).

Runs without OpenRLHF, Ray or DeepSpeed. Entry points:
  * CLI: ``openrlhf-steer-eval`` (``openrlhf_steer_eval.cli:main``);
  * math grading for reward functions: ``openrlhf_steer_eval.graders.math`` (``grade_answer``,
    ``MathGraderPool``);
  * metrics: ``openrlhf_steer_eval.metrics`` (``pass_at_k``, ``avg_at_k``);
  * plug-in contract: ``openrlhf_steer_eval.graders.base``; registry: ``openrlhf_steer_eval.benchmarks``.
Imports here stay light (no torch, no sympy) so ``--help`` is instant.
"""

__version__ = "0.1.0"
