"""Sample-level metrics: avg@n and the unbiased pass@k estimator, with standard errors.

Key scheme (lighteval style, the grader name always included)::

    <benchmark>/<grader>/avg@<n>              mean over problems of c_i / n
    <benchmark>/<grader>/pass@k:k=<k>&n=<n>   mean over problems of 1 - C(n-c_i, k) / C(n, k)

Standard errors are the sample standard deviation (ddof=1) of the per-problem values divided by
sqrt(N) (0 when N == 1); they are stored under the same key in a separate ``stderr`` mapping.
"""

from __future__ import annotations

import math
from typing import Dict, Iterable, List, Optional, Sequence, Tuple


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of Chen et al. (2021) for one problem with ``c`` correct out of ``n`` samples.

    Uses the stable product form ``1 - prod_{i=n-c+1}^{n} (1 - k/i)``.
    """
    if not (0 <= c <= n):
        raise ValueError(f"need 0 <= c <= n, got c={c}, n={n}")
    if not (1 <= k <= n):
        raise ValueError(f"pass@k needs 1 <= k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def mean_and_stderr(values: Sequence[float]) -> Tuple[float, float]:
    n = len(values)
    if n == 0:
        raise ValueError("no values to average")
    mean = sum(values) / n
    if n == 1:
        return mean, 0.0
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def default_ks(n: int) -> List[int]:
    """1, 2, 4, ... up to n, plus n itself."""
    ks, k = [], 1
    while k < n:
        ks.append(k)
        k *= 2
    ks.append(n)
    return ks


def avg_key(benchmark: str, grader: str, n: int) -> str:
    return f"{benchmark}/{grader}/avg@{n}"


def pass_key(benchmark: str, grader: str, k: int, n: int) -> str:
    return f"{benchmark}/{grader}/pass@k:k={k}&n={n}"


def correctness_metrics(
    benchmark: str, grader: str, correct: Sequence[Sequence[bool]], ks: Optional[Iterable[int]] = None
) -> Tuple[Dict[str, float], Dict[str, float]]:
    """avg@n and pass@k for every requested k <= n. ``correct[i][j]`` is sample j of problem i.

    All problems must have the same number of samples n (ValueError naming the first offender).
    Requested ks larger than n are skipped (the caller reports them as skipped).
    """
    if not correct:
        raise ValueError(f"{benchmark}/{grader}: no problems to score")
    n = len(correct[0])
    for i, row in enumerate(correct):
        if len(row) != n:
            raise ValueError(
                f"{benchmark}/{grader}: problem #{i} has {len(row)} responses but problem #0 has "
                f"{n}; every problem needs the same number of responses"
            )
    if n == 0:
        raise ValueError(f"{benchmark}/{grader}: problems have no responses")
    counts = [sum(bool(x) for x in row) for row in correct]
    metrics: Dict[str, float] = {}
    stderr: Dict[str, float] = {}
    key = avg_key(benchmark, grader, n)
    metrics[key], stderr[key] = mean_and_stderr([c / n for c in counts])
    for k in sorted(set(ks if ks is not None else default_ks(n))):
        if k > n:
            continue
        key = pass_key(benchmark, grader, k, n)
        metrics[key], stderr[key] = mean_and_stderr([pass_at_k(n, c, k) for c in counts])
    return metrics, stderr


def disagreements(
    ids: Sequence[str], verdicts_a: Sequence[Sequence[bool]], verdicts_b: Sequence[Sequence[bool]]
) -> Dict[str, object]:
    """Where two graders differ: sample count and the (problem id, sample index) pairs."""
    pairs = [
        (pid, j)
        for pid, ra, rb in zip(ids, verdicts_a, verdicts_b)
        for j, (a, b) in enumerate(zip(ra, rb))
        if bool(a) != bool(b)
    ]
    only_a = sum(1 for pid, ra, rb in zip(ids, verdicts_a, verdicts_b) for a, b in zip(ra, rb) if a and not b)
    total = sum(len(r) for r in verdicts_a)
    return {
        "samples": total,
        "count": len(pairs),
        "first_only": only_a,
        "second_only": len(pairs) - only_a,
        "problem_ids": sorted({pid for pid, _ in pairs}, key=lambda s: (len(s), s)),
        "samples_differing": [{"id": pid, "sample": j} for pid, j in pairs],
    }
