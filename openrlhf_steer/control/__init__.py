"""Entropy targets: hold the rollout policy's entropy on a curve the user chooses.

Three small, pure parts and one wrapper:

* :mod:`.targets`     the target curve over training progress (constant, linear / piecewise linear, cosine)
  and the optional EMA of the measured entropy;
* :mod:`.controllers` the feedback rules (``bang_bang``, ``pi``, ``hysteresis``), each a class with
  ``state_dict`` / ``load_state_dict``;
* :mod:`.levers`      what a controller moves (Pos-Adv's lambda, the entropy-loss coefficient, STEER's
  lambda_min, the negative-sample weight, eps_low / eps_high), with bounds from the method's validation;
* :mod:`.targeted`    :class:`TargetedMethod`, a Method that wraps the selected method and runs the
  controller at every rollout-step boundary (where the methods' own controllers run).

Options: :class:`~openrlhf_steer.control.config.EntropyTargetConfig` (``--entropy.target.<field>``).
"""

from openrlhf_steer.control.config import EntropyTargetConfig
from openrlhf_steer.control.controllers import CONTROLLERS, Bounds, bang_bang_step, build_controller
from openrlhf_steer.control.levers import LEVERS, get_lever
from openrlhf_steer.control.targeted import TargetedMethod, attach_target
from openrlhf_steer.control.targets import SCHEDULES, EmaSmoother, build_schedule

__all__ = [
    "CONTROLLERS",
    "LEVERS",
    "SCHEDULES",
    "Bounds",
    "EmaSmoother",
    "EntropyTargetConfig",
    "TargetedMethod",
    "attach_target",
    "bang_bang_step",
    "build_controller",
    "build_schedule",
    "get_lever",
]
