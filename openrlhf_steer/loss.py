"""Temporary alias of openrlhf_steer.core.loss while the demo moves to openrlhf_steer.apps (removed then)."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("openrlhf_steer.core.loss")
