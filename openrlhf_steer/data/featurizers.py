"""Prompt featurisers for the K-means data-diversity subsets (Jin et al., arXiv 2511.05993, App. D.3).

A featuriser maps a list of texts to a float32 matrix ``[len(texts), dim]``. Two are registered:

* ``mean_pooled_final_layer`` (default): App. D.3, "each prompt is represented by a mean-pooled token
  embedding from the final layer of Qwen2.5-Math-7B": the masked mean over the prompt's tokens of the
  model's last hidden state (``AutoModel(...).last_hidden_state``, i.e. after the final norm, which is what
  transformers returns as the final layer's output). Batched, on the GPU when there is one, and cached on
  disk in chunks written atomically, so an interrupted run resumes where it stopped and a second run reuses
  every vector.
* ``hashed_tfidf``: the dependency-free fallback (hashed word uni+bi-gram TF-IDF); not the paper's features,
  for machines without the 7B model.

Add one with :func:`register_featurizer`; look one up with :func:`make_featurizer`.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

Featurizer = Callable[[Sequence[str]], np.ndarray]

PAPER_EMBED_MODEL = "Qwen/Qwen2.5-Math-7B"
DEFAULT_FEATURIZER = "mean_pooled_final_layer"
# Bump when the pooling or the cache layout changes, so old cache files are not reused.
CACHE_VERSION = "mean_pool_v1"

_TOKEN = re.compile(r"[A-Za-z]+|\d+|[^\sA-Za-z\d]")


# --------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------
FEATURIZERS: Dict[str, Callable[..., Featurizer]] = {}


def register_featurizer(name: str):
    """Register a factory ``(**options) -> featuriser`` under ``name``."""

    def wrap(factory):
        if name in FEATURIZERS:
            raise ValueError(f"featuriser {name!r} is registered twice")
        FEATURIZERS[name] = factory
        return factory

    return wrap


def make_featurizer(name: str = DEFAULT_FEATURIZER, **options) -> Featurizer:
    """The featuriser registered as ``name``, built with ``options`` (e.g. ``model=``, ``cache_dir=``, ``dim=``)."""
    try:
        factory = FEATURIZERS[name]
    except KeyError:
        raise ValueError(f"unknown featuriser {name!r}; choose one of {sorted(FEATURIZERS)}") from None
    accepted = set(inspect.signature(factory).parameters)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ValueError(f"featuriser {name!r} takes no option(s) {unknown}; its options are {sorted(accepted)}")
    return factory(**options)


# --------------------------------------------------------------------------------------------------
# Hashed TF-IDF (fallback)
# --------------------------------------------------------------------------------------------------
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


@register_featurizer("hashed_tfidf")
def _hashed_tfidf_factory(dim: int = 2048) -> Featurizer:
    return lambda texts: hashed_tfidf(texts, dim=dim)


# --------------------------------------------------------------------------------------------------
# Mean-pooled final-layer states (App. D.3; the default)
# --------------------------------------------------------------------------------------------------
def masked_mean(hidden, mask):
    """Mean of ``hidden`` [B, T, D] over the positions where ``mask`` [B, T] is 1, in float32: [B, D]."""
    import torch

    weights = mask.to(torch.float32).unsqueeze(-1)
    counts = weights.sum(dim=1)
    if bool((counts == 0).any()):
        raise ValueError("masked_mean: a row has no unmasked token (an empty prompt?); every prompt needs one")
    return (hidden.to(torch.float32) * weights).sum(dim=1) / counts


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def resolve_device(device: str) -> str:
    """``auto``: ``cuda`` when a GPU is visible, else ``cpu``; anything else is returned as given."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class MeanPooledFinalLayer:
    """Masked mean of the final hidden state of ``model`` over each text's tokens (App. D.3).

    ``cache_dir`` (optional) holds one ``.npy`` file per chunk of ``chunk_size`` texts, named by the hash of
    the model, the settings and the chunk's texts; chunks already on disk are loaded instead of recomputed.
    Texts are tokenised without special tokens or a chat template (the prompt's own tokens), truncated to
    ``max_length``, right-padded (so every real token keeps its position; the mask drops the pads), and
    batched in order of length to waste little compute on padding.
    """

    model: str = PAPER_EMBED_MODEL
    batch_size: int = 16
    max_length: int = 1024
    device: str = "auto"
    dtype: str = "auto"
    cache_dir: Optional[str] = None
    chunk_size: int = 1024

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_length", "chunk_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"mean_pooled_final_layer {name}={getattr(self, name)}: use a positive integer")
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise ValueError(f"mean_pooled_final_layer dtype={self.dtype!r}: use auto, float32, bfloat16 or float16")
        self._loaded = None
        self.forward_batches = 0  # batches run through the model (a cache hit runs none)

    # -- cache ----------------------------------------------------------------------------------
    def settings_key(self) -> str:
        """What the vectors depend on besides the texts: model, truncation, dtype, pooling version."""
        spec = {
            "model": str(self.model),
            "max_length": int(self.max_length),
            "dtype": self._torch_dtype_name(),
            "version": CACHE_VERSION,
        }
        return _sha(json.dumps(spec, sort_keys=True))[:16]

    def _chunk_path(self, texts: Sequence[str]) -> Optional[Path]:
        if not self.cache_dir:
            return None
        digest = _sha(self.settings_key() + "\n" + "\n".join(_sha(t) for t in texts))
        return Path(self.cache_dir) / self.settings_key() / f"{digest}.npy"

    # -- model ----------------------------------------------------------------------------------
    def _torch_dtype_name(self) -> str:
        if self.dtype != "auto":
            return self.dtype
        return "bfloat16" if resolve_device(self.device).startswith("cuda") else "float32"

    def _load(self):
        if self._loaded is None:
            import torch
            from transformers import AutoModel, AutoTokenizer

            device = resolve_device(self.device)
            tokenizer = AutoTokenizer.from_pretrained(self.model)
            tokenizer.padding_side = "right"
            if tokenizer.pad_token is None:
                tokenizer.pad_token = tokenizer.eos_token
            model = AutoModel.from_pretrained(self.model, dtype=getattr(torch, self._torch_dtype_name()))
            model.to(device).eval()
            self._loaded = (tokenizer, model, device)
        return self._loaded

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        tokenizer, model, device = self._load()
        lengths = [len(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]
        order = sorted(range(len(texts)), key=lambda i: (-lengths[i], i))
        out = np.empty((len(texts), model.config.hidden_size), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                batch = tokenizer(
                    [texts[i] for i in idx],
                    add_special_tokens=False,
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(device)
                hidden = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
                out[idx] = masked_mean(hidden, batch["attention_mask"]).cpu().numpy()
                self.forward_batches += 1
        return out

    # -- featuriser -----------------------------------------------------------------------------
    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            raise ValueError("mean_pooled_final_layer: no texts to embed")
        parts = []
        for start in range(0, len(texts), self.chunk_size):
            chunk = texts[start : start + self.chunk_size]
            path = self._chunk_path(chunk)
            if path is not None and path.is_file():
                vectors = np.load(path, allow_pickle=False)
                if vectors.shape[0] != len(chunk):
                    raise ValueError(f"embedding cache {path} has {vectors.shape[0]} rows for {len(chunk)} texts")
            else:
                vectors = self._embed(chunk)
                if path is not None:
                    _atomic_save_npy(path, vectors)
            parts.append(vectors)
        return np.concatenate(parts, axis=0)


register_featurizer(DEFAULT_FEATURIZER)(MeanPooledFinalLayer)
