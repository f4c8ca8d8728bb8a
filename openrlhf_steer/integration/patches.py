"""The OpenRLHF module attributes the integration replaces, in one explicit registry.

OpenRLHF looks these names up as module globals when it runs (``ppo_actor.PolicyLoss``,
``ppo_actor.iter_grad_accum_global_norm``, ``models.actor.compute_entropy``, ``ppo_actor.PolicyModelActor``,
``ppo_trainer.PPOTrainer``), so replacing them is how our classes get in. :data:`OPENRLHF_PATCHES` records
each original once, before the first replacement, so that a repeated ``replace`` never mistakes our own
class for OpenRLHF's, lists what is replaced (diagnostics) and can put everything back.

Not module attributes, so not recorded here: ``EntropyControlPPOTrainer`` sets its own ``max_steps`` (what
``get_max_steps`` returns) and wraps its sample generator's ``generate_samples`` (``rollout_batches``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Dict, Tuple


@dataclass
class ModulePatches:
    originals: Dict[Tuple[str, str], Any] = field(default_factory=dict)

    def original(self, module: ModuleType, name: str) -> Any:
        """OpenRLHF's own value of ``module.name`` (recorded now if it was never replaced)."""
        key = (module.__name__, name)
        if key not in self.originals:
            self.originals[key] = getattr(module, name)
        return self.originals[key]

    def replace(self, module: ModuleType, name: str, value: Any) -> None:
        self.original(module, name)
        setattr(module, name, value)

    def replaced(self) -> Dict[str, str]:
        """``module.name`` -> the qualified name of what it holds now, for every recorded attribute."""
        out = {}
        for module_name, name in self.originals:
            value = getattr(importlib.import_module(module_name), name)
            qualname = getattr(value, "__qualname__", type(value).__qualname__)
            out[f"{module_name}.{name}"] = f"{getattr(value, '__module__', '?')}.{qualname}"
        return out

    def restore(self) -> None:
        """Put every original back (tests)."""
        for (module_name, name), value in self.originals.items():
            setattr(importlib.import_module(module_name), name, value)


OPENRLHF_PATCHES = ModulePatches()
