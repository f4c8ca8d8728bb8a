"""Hugging Face transformers backend: left-padded batched ``generate`` (CPU or GPU)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from tqdm.auto import tqdm

from . import BackendConfig, Prompt, SamplingConfig

# tokenizer_config classes that mean "a plain tokenizer.json"; AutoTokenizer would swap in the model
# family's own pre-tokenizer for them (e.g. Qwen2's byte-level one), silently changing the encoding.
_PLAIN_TOKENIZER_CLASSES = {None, "PreTrainedTokenizerFast", "TokenizersBackend"}


def load_tokenizer(path: str, trust_remote_code: bool = False):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    cfg_file = Path(path) / "tokenizer_config.json"
    if cfg_file.is_file() and (Path(path) / "tokenizer.json").is_file():
        cls = json.loads(cfg_file.read_text()).get("tokenizer_class")
        if cls in _PLAIN_TOKENIZER_CLASSES:
            tok = PreTrainedTokenizerFast.from_pretrained(path, padding_side="left")
            return tok
    return AutoTokenizer.from_pretrained(path, padding_side="left", trust_remote_code=trust_remote_code)


def render_prompt(tokenizer, prompt: Prompt) -> str:
    """Chat messages -> text through the tokenizer's chat template; plain strings pass through."""
    if isinstance(prompt, str):
        return prompt
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(
            "the tokenizer has no chat template, but the prompt is a chat conversation; "
            "pass --no-chat-template to use plain-text prompts"
        )
    return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)


class HFBackend:
    name = "hf"

    def __init__(self, config: BackendConfig):
        import torch
        from transformers import AutoModelForCausalLM

        if not config.model:
            raise ValueError("--model is required for --backend hf (a local checkpoint folder or hub id)")
        self.config = config
        self.tokenizer = load_tokenizer(config.tokenizer or config.model, config.trust_remote_code)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        device = config.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = "auto" if config.dtype == "auto" else getattr(torch, config.dtype)
        self.model = AutoModelForCausalLM.from_pretrained(
            config.model, dtype=dtype, trust_remote_code=config.trust_remote_code
        )
        self.model.to(device).eval()
        self.device = device
        # transformers fills every unset generate() option from model.generation_config, so a checkpoint's
        # sampling defaults (top_k, repetition_penalty, suppress_tokens...) would leak into the evaluation.
        # Keep only its stop/pad/bos tokens.
        from transformers import GenerationConfig

        old = self.model.generation_config
        self.model.generation_config = GenerationConfig(
            eos_token_id=old.eos_token_id if old.eos_token_id is not None else self.tokenizer.eos_token_id,
            pad_token_id=self.tokenizer.pad_token_id,
            bos_token_id=old.bos_token_id,
        )

    def describe(self) -> Dict[str, Any]:
        import torch
        import transformers

        return {
            "backend": self.name,
            "model": self.config.model,
            "device": self.device,
            "dtype": str(self.model.dtype),
            "batch_size": self.config.batch_size,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
        }

    def _generation_config(self, sampling: SamplingConfig, n_return: int):
        """The decoding of one request (model defaults were reduced to stop tokens in __init__)."""
        from transformers import GenerationConfig

        eos = getattr(self.model.generation_config, "eos_token_id", None)
        if eos is None:
            eos = self.tokenizer.eos_token_id
        common = dict(
            max_new_tokens=sampling.max_tokens,
            num_return_sequences=n_return,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=eos,
        )
        if sampling.temperature == 0:
            return GenerationConfig(do_sample=False, **common)
        return GenerationConfig(
            do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0, **common
        )

    def generate(
        self,
        prompts: List[Prompt],
        sampling: SamplingConfig,
        seeds: List[int],
        progress: Optional[Callable[[int, List[List[str]]], None]] = None,
    ) -> List[List[str]]:
        import torch

        texts = [render_prompt(self.tokenizer, p) for p in prompts]
        chat = [not isinstance(p, str) for p in prompts]
        bs = max(1, self.config.batch_size)
        out: List[List[str]] = []
        greedy = sampling.temperature == 0
        for start in tqdm(range(0, len(texts), bs), desc="generating (hf)", unit="batch"):
            batch, batch_chat = texts[start : start + bs], chat[start : start + bs]
            # chat templates already contain BOS; plain prompts get the tokenizer's special tokens
            enc = self.tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=not any(batch_chat)).to(
                self.device
            )
            # one seed per batch (that of its first prompt): reproducible for a given batch size
            torch.manual_seed(seeds[start])
            n_return = 1 if greedy else sampling.n
            with torch.no_grad():
                generated = self.model.generate(**enc, generation_config=self._generation_config(sampling, n_return))
            new_tokens = generated[:, enc["input_ids"].shape[1] :]
            decoded = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            batch_results = []
            for i in range(len(batch)):
                group = decoded[i * n_return : (i + 1) * n_return]
                batch_results.append(group * sampling.n if greedy else group)
            out.extend(batch_results)
            if progress is not None:
                progress(start, batch_results)
        return out
