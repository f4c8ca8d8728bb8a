"""The CPU demo: a tiny RLVR run of several entropy-control methods side by side, and the STEER
validation analyses (entropy-change estimator check, quadrant interventions, clip-trigger bands).

Entry point: ``python -m openrlhf_steer.apps.demo {run,analyze} ...`` (see ``docs/demo.md``). Nothing
here imports OpenRLHF, Ray or DeepSpeed: the demo drives the core library's loss directly.
"""
