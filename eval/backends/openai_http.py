"""OpenAI-compatible HTTP backend (vLLM/SGLang/TGI servers, hosted APIs), standard library only.

String prompts go to ``/v1/completions``; chat prompts (lists of messages) to ``/v1/chat/completions``.
Requests run in a thread pool (``batch_size`` at a time); connection errors, 429 and 5xx are retried
with exponential backoff. If a server returns fewer than ``n`` choices, the rest are requested again.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional

from tqdm.auto import tqdm

from . import BackendConfig, Prompt, SamplingConfig

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAIBackend:
    name = "openai"

    def __init__(self, config: BackendConfig):
        if not config.model:
            raise ValueError("--model is required for --backend openai (the served model name)")
        self.config = config
        root = config.base_url.rstrip("/")
        self.root = root[:-3] if root.endswith("/v1") else root
        self.api_key = os.environ.get(config.api_key_env, "")

    def describe(self) -> Dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.config.model,
            "base_url": self.root,
            "concurrency": self.config.batch_size,
        }

    # -- HTTP
    def _post(self, path: str, payload: dict) -> dict:
        data = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        delay = 1.0
        for attempt in range(self.config.max_retries + 1):
            req = urllib.request.Request(self.root + path, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.config.request_timeout) as resp:
                    return json.loads(resp.read().decode())
            except urllib.error.HTTPError as exc:
                body = exc.read().decode(errors="replace")[:500]
                if exc.code not in RETRY_STATUS or attempt == self.config.max_retries:
                    raise RuntimeError(f"POST {self.root + path} failed with HTTP {exc.code}: {body}") from None
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                if attempt == self.config.max_retries:
                    raise RuntimeError(
                        f"POST {self.root + path} failed after {attempt + 1} attempts: {exc}. "
                        "Is the server running (--base-url)?"
                    ) from None
            time.sleep(delay)
            delay = min(delay * 2, 30.0)
        raise AssertionError("unreachable")

    def _one(self, prompt: Prompt, sampling: SamplingConfig, seed: int) -> List[str]:
        texts: List[str] = []
        attempt = 0
        while len(texts) < sampling.n:
            want = sampling.n - len(texts)
            payload: Dict[str, Any] = {
                "model": self.config.model,
                "n": want,
                "temperature": sampling.temperature,
                "top_p": sampling.top_p,
                "max_tokens": sampling.max_tokens,
                "seed": seed + attempt,
            }
            if isinstance(prompt, str):
                result = self._post("/v1/completions", {**payload, "prompt": prompt})
                got = [c.get("text", "") for c in result.get("choices", [])]
            else:
                result = self._post("/v1/chat/completions", {**payload, "messages": prompt})
                got = [(c.get("message") or {}).get("content") or "" for c in result.get("choices", [])]
            if not got:
                raise RuntimeError(f"server returned no choices: {json.dumps(result)[:300]}")
            texts.extend(got[:want])
            attempt += 1
        return texts

    def generate(
        self,
        prompts: List[Prompt],
        sampling: SamplingConfig,
        seeds: List[int],
        progress: Optional[Callable[[int, List[List[str]]], None]] = None,
    ) -> List[List[str]]:
        out: List[List[str]] = []
        chunk = max(1, self.config.batch_size)
        with (
            ThreadPoolExecutor(max_workers=chunk) as pool,
            tqdm(total=len(prompts), desc="generating (openai)", unit="prompt") as bar,
        ):
            for start in range(0, len(prompts), chunk):
                futures = [
                    pool.submit(self._one, p, sampling, s)
                    for p, s in zip(prompts[start : start + chunk], seeds[start : start + chunk])
                ]
                results = [f.result() for f in futures]
                out.extend(results)
                bar.update(len(results))
                if progress is not None:
                    progress(start, results)
        return out
