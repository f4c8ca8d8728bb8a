"""Training data for the reproduction suite: DAPO-Math-17k in the papers' prompt format, and the
data-diversity subsets (seeded random and K-means) of Jin et al. (arXiv 2511.05993)."""

from .dapo_math import (
    DAPO_HF_ID,
    DAPO_PREFIX,
    DAPO_SUFFIX,
    MathPrompt,
    deduplicate,
    format_dapo_prompt,
    load_dapo_math,
    strip_dapo_template,
    write_openrlhf_jsonl,
)
from .featurizers import DEFAULT_FEATURIZER, FEATURIZERS, MeanPooledFinalLayer, hashed_tfidf, make_featurizer
from .subsets import SUBSET_STRATEGIES, kmeans, kmeans_subset, make_subset, random_subset

__all__ = [
    "DAPO_HF_ID",
    "DAPO_PREFIX",
    "DAPO_SUFFIX",
    "MathPrompt",
    "deduplicate",
    "format_dapo_prompt",
    "load_dapo_math",
    "strip_dapo_template",
    "write_openrlhf_jsonl",
    "DEFAULT_FEATURIZER",
    "FEATURIZERS",
    "MeanPooledFinalLayer",
    "make_featurizer",
    "SUBSET_STRATEGIES",
    "hashed_tfidf",
    "kmeans",
    "kmeans_subset",
    "make_subset",
    "random_subset",
]
