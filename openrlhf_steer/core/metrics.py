"""Loss metrics as device tensors, and their one reduction over an optimizer-step window.

:class:`LossMetrics` is what :class:`~openrlhf_steer.core.loss.PolicyLoss` returns: a read-only mapping
from metric name to float whose values stay 0-dim device tensors until one is read; the first read
copies all of them to the host in one transfer. Adapters that never read them per micro-batch pass
:meth:`LossMetrics.tensors` to :class:`MetricWindow`, which copies a whole optimizer step at once.

The window reduction (:data:`REDUCTIONS`, :func:`reduction_of`) is the one definition every adapter
logs and offers to the controllers:

* ``tokens/valid`` and ``loss/*``: summed over the window's micro-batches (each micro-batch loss is
  already divided by the window's denominator, so the sum is the window's loss; across data-parallel
  ranks the losses are recombined from the denominators they were divided by);
* ``weights/min``: minimum; ``weights/max`` and every ``*_max``: maximum;
* everything else: the token-weighted mean (each micro-batch weighted by its share of the window's tokens).
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import torch

Tensor = torch.Tensor
Value = Union[Tensor, float, int]


class LossMetrics(Mapping[str, float]):
    """Metric name -> value of one loss call. Values are copied to the host together, on first read."""

    def __init__(self, values: Mapping[str, Value]):
        self._values: Dict[str, Value] = dict(values)
        self._floats: Optional[Dict[str, float]] = None

    def tensors(self) -> Dict[str, Value]:
        """The values as computed: detached 0-dim tensors (on the loss's device) or Python numbers."""
        return dict(self._values)

    def _materialise(self) -> Dict[str, float]:
        if self._floats is None:
            self._floats = dict(zip(self._values, host_values([self._values])[0]))
        return self._floats

    def __getitem__(self, key: str) -> float:
        return self._materialise()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __repr__(self) -> str:
        return f"LossMetrics({self._materialise()!r})"


def host_values(rows: Sequence[Mapping[str, Value]]) -> List[List[float]]:
    """Every value of every row as Python floats, with one device-to-host copy for all the tensors."""
    tensors = [v.detach().reshape(()).to(torch.float64) for row in rows for v in row.values() if torch.is_tensor(v)]
    copied = iter(torch.stack(tensors).tolist()) if tensors else iter(())
    return [[next(copied) if torch.is_tensor(v) else float(v) for v in row.values()] for row in rows]


SUM, MIN, MAX, TOKEN_MEAN = "sum", "min", "max", "token_mean"


def reduction_of(key: str) -> str:
    """How ``key`` combines over the micro-batches of one optimizer step (module doc)."""
    if key == "tokens/valid" or key.startswith("loss/"):
        return SUM
    if key == "weights/min":
        return MIN
    if key == "weights/max" or key.endswith("_max"):
        return MAX
    return TOKEN_MEAN


def reduce_window(rows: Sequence[Mapping[str, float]], tokens: Sequence[float]) -> Dict[str, float]:
    """One optimizer step's metrics from its micro-batches' (host) metrics and valid-token counts."""
    window_tokens = float(sum(tokens))
    out: Dict[str, float] = {}
    for row, n in zip(rows, tokens):
        share = float(n) / max(window_tokens, 1.0)
        for key, value in row.items():
            how = reduction_of(key)
            if how == SUM:
                out[key] = out.get(key, 0.0) + value
            elif how == MIN:
                out[key] = min(out.get(key, math.inf), value)
            elif how == MAX:
                out[key] = max(out.get(key, -math.inf), value)
            else:
                out[key] = out.get(key, 0.0) + share * value
    return out


# Combines the per-rank window sums across data-parallel ranks: (sums, maxima, minima) -> the same, global.
DataParallelReduce = Callable[[Dict[str, float], Dict[str, float], Dict[str, float]], Tuple[Dict, Dict, Dict]]


class MetricWindow:
    """The loss metrics of one optimizer step, kept as device tensors until :meth:`reduce`."""

    def __init__(self) -> None:
        self.rows: List[Dict[str, Value]] = []
        self.tokens: List[Value] = []
        self.denominators: List[Optional[float]] = []
        self.units: List[Value] = []

    def add(
        self,
        metrics: Union[LossMetrics, Mapping[str, Value]],
        valid_tokens: Value,
        loss_denominator: Optional[float] = None,
        loss_units: Optional[Value] = None,
    ) -> None:
        """``loss_denominator``: what the loss divided by (``num_tokens``, or ``num_seqs`` for the seq-mean
        modes); ``loss_units``: this micro-batch's count in the same unit (tokens, or sequences with a token;
        default ``valid_tokens``). Across data-parallel ranks the window's ``loss/*`` is
        sum(loss x denominator) / sum(units)."""
        values = metrics.tensors() if isinstance(metrics, LossMetrics) else dict(metrics)
        self.rows.append(values)
        self.tokens.append(valid_tokens)
        self.denominators.append(loss_denominator)
        self.units.append(valid_tokens if loss_units is None else loss_units)

    def __len__(self) -> int:
        return len(self.rows)

    def reduce(self, data_parallel: Optional[DataParallelReduce] = None) -> Dict[str, float]:
        """The window's metrics (module doc), copied to the host once; ``data_parallel`` makes them global."""
        if not self.rows:
            return {}
        counts = [{str(i): t for i, t in enumerate(self.tokens)}, {str(i): u for i, u in enumerate(self.units)}]
        host = host_values(self.rows + counts)
        tokens, units = host[-2], host[-1]
        rows = [dict(zip(row, values)) for row, values in zip(self.rows, host[:-2])]
        if data_parallel is None:
            return reduce_window(rows, tokens)
        return _reduce_across_ranks(rows, tokens, self.denominators, units, data_parallel)


def _reduce_across_ranks(rows, tokens, denominators, units, data_parallel: DataParallelReduce) -> Dict[str, float]:
    """Sums, maxima and minima of this rank, made global by ``data_parallel``; ``loss/*`` as token sums
    (value x the denominator it was divided by) over the global window tokens."""
    if any(d is None for d in denominators):
        raise ValueError("MetricWindow.add needs loss_denominator for every micro-batch to reduce across ranks")
    keys = sorted(set().union(*[r.keys() for r in rows]))
    sums: Dict[str, float] = {"_tokens": float(sum(tokens)), "_loss_units": float(sum(units))}
    maxima: Dict[str, float] = {}
    minima: Dict[str, float] = {}
    for key in keys:
        how = reduction_of(key)
        present = [(r[key], n, d) for r, n, d in zip(rows, tokens, denominators) if key in r]
        if key == "tokens/valid":
            sums[key] = sum(v for v, _, _ in present)
        elif how == SUM:
            sums[key] = sum(v * d for v, _, d in present)
        elif how == MIN:
            minima[key] = min(v for v, _, _ in present)
        elif how == MAX:
            maxima[key] = max(v for v, _, _ in present)
        else:
            sums[key] = sum(v * n for v, n, _ in present)
    sums, maxima, minima = data_parallel(sums, maxima, minima)
    window_tokens = float(sums.pop("_tokens"))
    loss_units = float(sums.pop("_loss_units"))
    out = dict(maxima)
    out.update(minima)
    for key, value in sums.items():
        if key == "tokens/valid":
            out[key] = value
        elif reduction_of(key) == SUM:
            out[key] = value / max(loss_units, 1.0)
        else:
            out[key] = value / max(window_tokens, 1.0)
    return out
