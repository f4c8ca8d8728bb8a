"""Temporary alias of openrlhf_steer_eval.atomic_io while the demo moves to openrlhf_steer.apps (removed then)."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("openrlhf_steer_eval.atomic_io")
