"""Data-diversity subsets of a training set (Jin et al., arXiv 2511.05993, §6.3).

The paper (Sec. 6.3, App. D.3) trains on K-means-selected and on random subsets of DAPO-Math-17K of the
same sizes (10,001 / 5,031 / 2,538 / 1,246 / 616) and reports that the less diverse (K-means) subsets end
with lower entropy. No selection code is published, so the procedures below are ours and documented:

* ``random``: ``size`` problems drawn without replacement with ``numpy.random.default_rng(seed)``.
* ``kmeans``: each problem is embedded with a cheap, dependency-free featuriser (hashed word
  uni+bi-gram counts, sub-linear TF, IDF, L2 normalisation; ``hashed_tfidf``), clustered with
  seeded k-means++ / Lloyd (cosine geometry via normalised vectors), and the ``size`` problems
  nearest to the centroids of the ``n_clusters`` clusters are kept, round-robin over clusters
  (closest first), so every cluster contributes ~size/n_clusters prototypical problems. With
  ``n_clusters`` < ``size`` this concentrates the subset around a few prototypes: a low-diversity
  subset, which is the contrast the paper draws.
* ``kmeans_top_clusters``: the rule of App. D.3: whole clusters, largest first, until ``size`` (the last
  cluster cut nearest-to-centroid first). The paper embeds prompts with mean-pooled final-layer
  Qwen2.5-Math-7B states and its k is lost in the text; the featuriser and k here are documented choices.
"""

from __future__ import annotations

import re
import zlib
from typing import Callable, Dict, List, Sequence, Tuple, TypeVar

import numpy as np

T = TypeVar("T")

_TOKEN = re.compile(r"[A-Za-z]+|\d+|[^\sA-Za-z\d]")


def _tokens(text: str) -> List[str]:
    return [t.lower() for t in _TOKEN.findall(text)]


def hashed_tfidf(texts: Sequence[str], dim: int = 2048) -> np.ndarray:
    """Hashed uni+bi-gram TF-IDF rows, L2-normalised, shape [len(texts), dim], float32.

    Hashing uses crc32 (stable across processes, unlike Python's salted ``hash``).
    """
    if dim < 8:
        raise ValueError(f"hashed_tfidf dim={dim} is too small; use dim >= 8 (default 2048)")
    counts = np.zeros((len(texts), dim), dtype=np.float32)
    for row, text in enumerate(texts):
        toks = _tokens(text)
        grams = toks + [a + " " + b for a, b in zip(toks, toks[1:])]
        for g in grams:
            counts[row, zlib.crc32(g.encode("utf-8")) % dim] += 1.0
    tf = np.log1p(counts)
    df = (counts > 0).sum(axis=0)
    idf = np.log((1.0 + len(texts)) / (1.0 + df)) + 1.0
    x = tf * idf.astype(np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


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
    dim: int = 2048,
) -> List[T]:
    """Nearest-to-centroid selection, round-robin over ``n_clusters`` k-means clusters (see module doc)."""
    if not 1 <= size <= len(items):
        raise ValueError(f"subset size={size} must be between 1 and the dataset size ({len(items)})")
    x = hashed_tfidf([text_of(it) for it in items], dim=dim)
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
    dim: int = 2048,
) -> List[T]:
    """Jin et al. App. D.3's rule: cluster, sort the clusters by size (largest first) and take whole clusters from the
    top until ``size`` is reached; the last cluster contributes its members nearest to its centroid. Subsets of
    decreasing size are therefore nested and concentrated on the dominant topics."""
    if not 1 <= size <= len(items):
        raise ValueError(f"subset size={size} must be between 1 and the dataset size ({len(items)})")
    x = hashed_tfidf([text_of(it) for it in items], dim=dim)
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
