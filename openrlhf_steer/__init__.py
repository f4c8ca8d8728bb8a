"""openrlhf-steer: entropy control for RL with verifiable rewards (STEER, Pos-Adv-Reweight, baselines)."""
__version__ = "0.1.0"
