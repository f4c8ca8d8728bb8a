"""Data-diversity subsets of a training set (Jin et al., arXiv 2511.05993, §6.3).

The paper (Sec. 6.3, App. D.3) trains on K-means-selected and on random subsets of DAPO-Math-17K of the
same sizes (10,001 / 5,031 / 2,538 / 1,246 / 616) and reports that the less diverse (K-means) subsets end
with lower entropy. No selection code is published, so the procedures below are ours and documented:

* ``random``: ``size`` problems drawn without replacement with ``numpy.random.default_rng(seed)``.
* ``kmeans``: each problem is embedded with a registered featuriser (``featurizers.py``; default the
  paper's mean-pooled final-layer Qwen2.5-Math-7B states, fallback ``hashed_tfidf``), clustered with
  seeded k-means++ / Lloyd, and the ``size`` problems
  nearest to the centroids of the ``n_clusters`` clusters are kept, round-robin over clusters
  (closest first), so every cluster contributes ~size/n_clusters prototypical problems. With
  ``n_clusters`` < ``size`` this concentrates the subset around a few prototypes: a low-diversity
  subset, which is the contrast the paper draws.
* ``kmeans_top_clusters``: the rule of App. D.3: whole clusters, largest first, until ``size`` (the last
  cluster cut nearest-to-centroid first). Features: App. D.3's mean-pooled final-layer Qwen2.5-Math-7B
  states by default (``featurizer="mean_pooled_final_layer"``); ``featurizer="hashed_tfidf"`` is the
  explicit fallback. The paper's k is lost in the text (the configs give theirs).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union

import numpy as np

from .featurizers import DEFAULT_FEATURIZER, Featurizer, make_featurizer
from .featurizers import hashed_tfidf  # noqa: F401  (its old home; kept importable from here)

T = TypeVar("T")


def kmeans(x: np.ndarray, n_clusters: int, seed: int = 0, iters: int = 50) -> Tuple[np.ndarray, np.ndarray]:
    """Seeded k-means++ initialisation then Lloyd iterations. Returns (labels [N], centroids [k, D])."""
    n = x.shape[0]
    if not 1 <= n_clusters <= n:
        raise ValueError(f"n_clusters={n_clusters} must be between 1 and the number of points ({n})")
    rng = np.random.default_rng(seed)
    centroids = np.empty((n_clusters, x.shape[1]), dtype=x.dtype)
    centroids[0] = x[rng.integers(n)]
    closest = ((x - centroids[0]) ** 2).sum(axis=1)
    for c in range(1, n_clusters):
        total = closest.sum()
        idx = int(rng.choice(n, p=closest / total)) if total > 0 else int(rng.integers(n))
        centroids[c] = x[idx]
        closest = np.minimum(closest, ((x - centroids[c]) ** 2).sum(axis=1))
    labels = np.full(n, -1)
    for _ in range(iters):
        dists = (x**2).sum(1)[:, None] - 2.0 * x @ centroids.T + (centroids**2).sum(1)[None, :]
        new_labels = dists.argmin(axis=1)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
        for c in range(n_clusters):
            members = x[labels == c]
            if len(members):
                centroids[c] = members.mean(axis=0)
            else:  # empty cluster: re-seed it at the point farthest from its centroid
                far = int(dists[np.arange(n), labels].argmax())
                centroids[c] = x[far]
    return labels, centroids


def _features(
    texts: Sequence[str], featurizer: Union[str, Featurizer], options: Optional[Mapping[str, Any]]
) -> np.ndarray:
    """Rows of ``featurizer`` (a registered name, built with ``options``, or a callable) for ``texts``."""
    if callable(featurizer):
        if options:
            raise ValueError("featurizer_options apply to a registered featuriser name, not to a callable")
        fn = featurizer
    else:
        fn = make_featurizer(str(featurizer), **dict(options or {}))
    x = np.asarray(fn(list(texts)), dtype=np.float32)
    if x.ndim != 2 or x.shape[0] != len(texts):
        raise ValueError(f"featuriser returned shape {x.shape} for {len(texts)} texts; expected [{len(texts)}, dim]")
    return x


def random_subset(items: Sequence[T], size: int, seed: int = 0) -> List[T]:
    """``size`` items without replacement, order of the draw kept (seeded)."""
    if not 1 <= size <= len(items):
        raise ValueError(f"subset size={size} must be between 1 and the dataset size ({len(items)})")
    idx = np.random.default_rng(seed).choice(len(items), size=size, replace=False)
    return [items[int(i)] for i in idx]


def kmeans_subset(
    items: Sequence[T],
    size: int,
    n_clusters: int,
    seed: int = 0,
    text_of: Callable[[T], str] = str,
    featurizer: Union[str, Featurizer] = DEFAULT_FEATURIZER,
    featurizer_options: Optional[Mapping[str, Any]] = None,
) -> List[T]:
    """Nearest-to-centroid selection, round-robin over ``n_clusters`` k-means clusters (see module doc)."""
    if not 1 <= size <= len(items):
        raise ValueError(f"subset size={size} must be between 1 and the dataset size ({len(items)})")
    x = _features([text_of(it) for it in items], featurizer, featurizer_options)
    labels, centroids = kmeans(x, n_clusters, seed=seed)
    queues: List[List[int]] = []
    for c in range(n_clusters):
        members = np.flatnonzero(labels == c)
        dist = ((x[members] - centroids[c]) ** 2).sum(axis=1)
        queues.append([int(m) for m in members[np.argsort(dist, kind="stable")]])
    chosen: List[int] = []
    depth = 0
    while len(chosen) < size:
        for q in queues:
            if depth < len(q) and len(chosen) < size:
                chosen.append(q[depth])
        depth += 1
    return [items[i] for i in chosen]


def kmeans_top_clusters_subset(
    items: Sequence[T],
    size: int,
    n_clusters: int,
    seed: int = 0,
    text_of: Callable[[T], str] = str,
    featurizer: Union[str, Featurizer] = DEFAULT_FEATURIZER,
    featurizer_options: Optional[Mapping[str, Any]] = None,
) -> List[T]:
    """Jin et al. App. D.3's rule: cluster, sort the clusters by size (largest first) and take whole clusters from the
    top until ``size`` is reached; the last cluster contributes its members nearest to its centroid. Subsets of
    decreasing size are therefore nested and concentrated on the dominant topics."""
    if not 1 <= size <= len(items):
        raise ValueError(f"subset size={size} must be between 1 and the dataset size ({len(items)})")
    x = _features([text_of(it) for it in items], featurizer, featurizer_options)
    labels, centroids = kmeans(x, n_clusters, seed=seed)
    sizes = np.bincount(labels, minlength=n_clusters)
    order = sorted(range(n_clusters), key=lambda c: (-int(sizes[c]), c))  # ties: the lower cluster id first
    chosen: List[int] = []
    for c in order:
        members = np.flatnonzero(labels == c)
        dist = ((x[members] - centroids[c]) ** 2).sum(axis=1)
        chosen += [int(m) for m in members[np.argsort(dist, kind="stable")]][: size - len(chosen)]
        if len(chosen) == size:
            break
    return [items[i] for i in chosen]


SUBSET_STRATEGIES: Dict[str, Callable[..., list]] = {
    "random": random_subset,
    "kmeans": kmeans_subset,
    "kmeans_top_clusters": kmeans_top_clusters_subset,
}


def make_subset(strategy: str, items: Sequence[T], size: int, seed: int = 0, **options) -> List[T]:
    """Dispatch to a registered subset strategy by name."""
    try:
        fn = SUBSET_STRATEGIES[strategy]
    except KeyError:
        raise ValueError(f"unknown subset strategy {strategy!r}; choose one of {sorted(SUBSET_STRATEGIES)}") from None
    return fn(items, size, seed=seed, **options)
