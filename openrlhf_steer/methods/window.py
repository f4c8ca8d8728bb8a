"""Statistics over the optimizer-step window, for methods whose config has ``stat_scope``.

STEER's max/min/quantile of |Omega|, forking tokens' entropy quantile and the covariance methods' means
can be taken over one loss call (``stat_scope=micro_batch``, the authors' code) or over every micro-batch
of one optimizer step (``mini_batch``, the papers' wording). For the latter the adapter calls
:meth:`WindowStatsMethod.window_stats` on the whole window before the loss calls and puts the result in
``LossInputs.window_stats``; under data parallelism it all-reduces the reducible keys and gathers the
values of quantiles (``openrlhf_steer.integration.window_reduce``).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping

import torch

from openrlhf_steer.core.types import LossInputs
from openrlhf_steer.methods.base import Method

Tensor = torch.Tensor


class WindowStatsMethod(Method):
    """Base of the methods with a ``stat_scope`` option."""

    @property
    def needs_window_stats(self) -> bool:
        return getattr(self.config, "stat_scope", "micro_batch") == "mini_batch"

    def window_stats(self, inputs_list: List[LossInputs]) -> Dict[str, Any]:
        """Statistics over every micro-batch of one optimizer-step window, keys namespaced by method name."""
        return {}

    def window_stats_reduction(self) -> Dict[str, str]:
        """How to combine ``window_stats`` across data-parallel ranks: key -> "sum" | "max" | "min".

        Quantiles cannot be reduced: gather their values with :meth:`window_values` instead.
        """
        return {}

    def window_values(self, inputs_list: List[LossInputs]) -> Dict[str, Tensor]:
        """Per-token values whose statistic no reduction can combine (quantiles): key -> 1-D float tensor.

        Under data parallelism the adapter gathers each key from every rank in rank order and passes the
        concatenation to :meth:`window_stats_from_values`, so every rank gets the global statistic.
        """
        return {}

    def window_stats_from_values(self, values: Mapping[str, Tensor]) -> Dict[str, Any]:
        """Statistics from the (gathered) :meth:`window_values`; they replace those of ``window_stats``.

        ``window_stats`` computes them with this same function on its own values, so that one process and
        the gathered concatenation give bit-identical results.
        """
        return {}
