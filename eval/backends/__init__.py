"""Generation backends (a registry: name -> factory). Heavy libraries are imported lazily.

hf      Hugging Face transformers (CPU or GPU)             backends/hf.py
vllm    vLLM offline engine (GPU)                          backends/vllm_backend.py
openai  any OpenAI-compatible HTTP server                  backends/openai_http.py
"""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Protocol, Union

Prompt = Union[str, List[Dict[str, str]]]


@dataclass
class SamplingConfig:
    """Decoding parameters of one benchmark run (recorded in results.json and in the cache key)."""

    n: int = field(default=1, metadata={"help": "Responses per problem."})
    temperature: float = field(default=0.6, metadata={"help": "0 means greedy decoding."})
    top_p: float = field(default=0.95, metadata={"help": "Nucleus sampling threshold in (0, 1]."})
    max_tokens: int = field(default=4096, metadata={"help": "Maximum new tokens per response."})
    seed: int = field(default=0, metadata={"help": "Base seed; each problem derives its own (see problem_seed)."})

    def validate(self) -> "SamplingConfig":
        if self.n < 1:
            raise ValueError(f"--n must be >= 1 (got {self.n})")
        if self.temperature < 0:
            raise ValueError(f"--temperature must be >= 0 (got {self.temperature})")
        if not (0 < self.top_p <= 1):
            raise ValueError(f"--top-p must be in (0, 1] (got {self.top_p})")
        if self.max_tokens < 1:
            raise ValueError(f"--max-tokens must be >= 1 (got {self.max_tokens})")
        return self


def problem_seed(seed: int, benchmark: str, problem_id: str) -> int:
    """A per-problem seed that does not depend on batching or resume order."""
    digest = hashlib.sha256(f"{seed}|{benchmark}|{problem_id}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@dataclass
class BackendConfig:
    model: str = field(default="", metadata={"help": "Model path or id (HF/vLLM) or served model name (openai)."})
    tokenizer: Optional[str] = field(default=None, metadata={"help": "Tokenizer path if different from model."})
    dtype: str = field(default="auto", metadata={"help": "hf/vllm weights dtype: auto, float32, bfloat16, float16."})
    device: str = field(default="auto", metadata={"help": "hf: cpu, cuda, cuda:1, or auto."})
    batch_size: int = field(default=8, metadata={"help": "hf: prompts per generate() call; openai: parallel requests."})
    base_url: str = field(
        default="http://127.0.0.1:8000", metadata={"help": "openai: server root (with or without /v1)."}
    )
    api_key_env: str = field(
        default="OPENAI_API_KEY", metadata={"help": "openai: environment variable holding the key."}
    )
    request_timeout: float = field(default=600.0, metadata={"help": "openai: seconds per HTTP request."})
    max_retries: int = field(default=5, metadata={"help": "openai: retries on connection errors, 429 and 5xx."})
    tensor_parallel_size: int = field(default=1, metadata={"help": "vllm: GPUs per model."})
    gpu_memory_utilization: float = field(default=0.9, metadata={"help": "vllm: fraction of GPU memory to use."})
    max_model_len: Optional[int] = field(default=None, metadata={"help": "vllm: context length override."})
    trust_remote_code: bool = field(default=False, metadata={"help": "hf/vllm: allow model repos' custom code."})


class Backend(Protocol):
    name: str

    def generate(
        self,
        prompts: List[Prompt],
        sampling: SamplingConfig,
        seeds: List[int],
        progress: Optional[Callable[[int, List[List[str]]], None]] = None,
    ) -> List[List[str]]:
        """``n`` responses per prompt. ``progress(start_index, results)`` is called after each batch
        so the caller can cache it; ``seeds[i]`` is the seed of prompt i."""
        ...

    def describe(self) -> Dict[str, Any]: ...


BACKENDS: Dict[str, str] = {
    "hf": "openrlhf_steer_eval.backends.hf:HFBackend",
    "vllm": "openrlhf_steer_eval.backends.vllm_backend:VLLMBackend",
    "openai": "openrlhf_steer_eval.backends.openai_http:OpenAIBackend",
}


def make_backend(name: str, config: BackendConfig) -> Backend:
    if name not in BACKENDS:
        raise ValueError(f"unknown --backend {name!r}; choose one of {', '.join(BACKENDS)}")
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls)(config)
