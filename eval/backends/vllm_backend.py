"""vLLM offline backend (GPU). vLLM is imported only when this backend is chosen.

Chat prompts are rendered with the tokenizer's chat template and passed as token ids (no second BOS);
plain prompts as text. Both go through ``LLM.generate``; every prompt carries its own seed in
``SamplingParams`` (exactly
reproducible per problem, independent of batching).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from . import BackendConfig, Prompt, SamplingConfig
from .hf import render_prompt

CHUNK = 512  # prompts per generate() call: vLLM batches internally; chunks are what gets cached


class VLLMBackend:
    name = "vllm"

    def __init__(self, config: BackendConfig):
        try:
            import vllm
        except ImportError:
            raise RuntimeError(
                "--backend vllm needs the vllm package (a GPU install: "
                "pip install 'openrlhf-steer[train]'); use --backend hf on CPU"
            ) from None
        if not config.model:
            raise ValueError("--model is required for --backend vllm")
        self.config = config
        self._vllm = vllm
        kwargs: Dict[str, Any] = dict(
            model=config.model,
            tokenizer=config.tokenizer or config.model,
            dtype=config.dtype,
            tensor_parallel_size=config.tensor_parallel_size,
            gpu_memory_utilization=config.gpu_memory_utilization,
            trust_remote_code=config.trust_remote_code,
        )
        if config.max_model_len:
            kwargs["max_model_len"] = config.max_model_len
        self.llm = vllm.LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()

    def describe(self) -> Dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.config.model,
            "vllm": getattr(self._vllm, "__version__", "?"),
            "tensor_parallel_size": self.config.tensor_parallel_size,
        }

    def generate(
        self,
        prompts: List[Prompt],
        sampling: SamplingConfig,
        seeds: List[int],
        progress: Optional[Callable[[int, List[List[str]]], None]] = None,
    ) -> List[List[str]]:
        # chat-rendered text already holds the template's BOS; tokenising it ourselves without special
        # tokens avoids vLLM adding a second one. Plain prompts go as text (vLLM adds BOS as usual).
        texts: List[Any] = []
        for p in prompts:
            if isinstance(p, str):
                texts.append(p)
            else:
                ids = self.tokenizer(render_prompt(self.tokenizer, p), add_special_tokens=False)["input_ids"]
                texts.append({"prompt_token_ids": list(ids)})
        out: List[List[str]] = []
        for start in range(0, len(texts), CHUNK):
            params = [
                self._vllm.SamplingParams(
                    n=sampling.n,
                    temperature=sampling.temperature,
                    top_p=sampling.top_p if sampling.temperature > 0 else 1.0,
                    max_tokens=sampling.max_tokens,
                    seed=seed,
                )
                for seed in seeds[start : start + CHUNK]
            ]
            results = self.llm.generate(texts[start : start + CHUNK], params, use_tqdm=True)
            batch = [[o.text for o in r.outputs] for r in results]
            out.extend(batch)
            if progress is not None:
                progress(start, batch)
        return out
