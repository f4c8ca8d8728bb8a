"""Stand-in for OpenRLHF 0.11.2's vLLM engine actors: transformers generation on CPU (test support).

:func:`create_standin_engines` has the signature of ``openrlhf.trainer.ray.create_vllm_engines``
and returns Ray actors that serve the engine interface OpenRLHF calls: ``generate_responses`` is
OpenRLHF's own ``RolloutRayActor.generate_responses`` (its ``SingleTurnAgentExecutor`` tokenises,
calls ``generate`` and loads and calls the reward file, exactly as in a vLLM engine process);
``generate`` samples with transformers (temperature, top-p, min/max tokens; sampled-token
log-probs of the processed distribution when ``logprobs`` is asked, like vLLM's
``processed_logprobs``); ``sleep`` / ``wake_up`` / ``reset_prefix_cache`` have nothing to do.

The weight broadcast is replaced on the policy side by :func:`broadcast_to_standin_engines`:
rank 0 sends the full parameters through Ray (``update_weights``), in place of vLLM's NCCL/gloo
group.

Each ``generate_responses`` call appends a JSON line to ``$STEERTEST_E2E_REPORT`` (process id,
whether DeepSpeed / ``openrlhf.models`` are imported, weight version), so a test can check the
engine process never imports DeepSpeed and that new weights arrive.
"""

from __future__ import annotations

import json
import os
import sys
from types import SimpleNamespace
from typing import Dict, List, Optional

import ray
import torch

REPORT_ENV = "STEERTEST_E2E_REPORT"


def _openrlhf_generate_responses():
    from openrlhf.trainer.ray.vllm_engine import RolloutRayActor

    return RolloutRayActor.__ray_metadata__.modified_class.__ray_actor_class__.generate_responses


class StandInRolloutEngine:
    def __init__(self, pretrain: str, seed: int, remote_rm_url=None, agent_func_path=None, logprobs: bool = False):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from openrlhf.trainer.ray.vllm_engine import _load_agent_executor
        from openrlhf.utils.agent import SingleTurnAgentExecutor

        if agent_func_path:
            self.executor = _load_agent_executor(agent_func_path)
        else:
            self.executor = SingleTurnAgentExecutor(remote_rm_url)
        self.model = AutoModelForCausalLM.from_pretrained(pretrain, dtype=torch.float32).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(pretrain, trust_remote_code=True)
        self.weight_version = 0
        torch.manual_seed(seed)

    generate_responses = None  # set below: OpenRLHF's own method

    @torch.no_grad()
    def _sample(self, prompt_token_ids: List[int], params) -> SimpleNamespace:
        from transformers import GenerationConfig

        temperature = float(getattr(params, "temperature", 1.0) or 1.0)
        config = GenerationConfig(
            do_sample=True,
            temperature=temperature,
            top_p=float(getattr(params, "top_p", 1.0) or 1.0),
            top_k=0,
            max_new_tokens=int(params.max_tokens),
            min_new_tokens=int(getattr(params, "min_tokens", 0) or 0),
            eos_token_id=self.tokenizer.eos_token_id,
            pad_token_id=self.tokenizer.pad_token_id,
            output_scores=True,
            return_dict_in_generate=True,
        )
        ids = torch.tensor([prompt_token_ids], dtype=torch.long)
        out = self.model.generate(ids, attention_mask=torch.ones_like(ids), generation_config=config)
        tokens = out.sequences[0, ids.shape[1] :].tolist()
        eos = self.tokenizer.eos_token_id
        if eos in tokens:
            tokens = tokens[: tokens.index(eos) + 1]
        logprobs = None
        if getattr(params, "logprobs", None) is not None:
            logprobs = []
            for step, token in enumerate(tokens):
                processed = torch.log_softmax(out.scores[step][0].float(), dim=-1)
                logprobs.append({token: SimpleNamespace(logprob=float(processed[token]))})
        finish = "stop" if tokens and tokens[-1] == eos else "length"
        text = self.tokenizer.decode(tokens, skip_special_tokens=bool(getattr(params, "skip_special_tokens", False)))
        return SimpleNamespace(
            outputs=[SimpleNamespace(token_ids=tokens, text=text, finish_reason=finish, logprobs=logprobs)]
        )

    async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
        self._report()
        return self._sample(list(prompt_token_ids), sampling_params)

    def _report(self) -> None:
        path = os.environ.get(REPORT_ENV)
        if not path:
            return
        line = {
            "event": "engine",
            "pid": os.getpid(),
            "deepspeed": "deepspeed" in sys.modules,
            "openrlhf_models": "openrlhf.models" in sys.modules,
            "weight_version": self.weight_version,
        }
        with open(path, "a") as handle:
            handle.write(json.dumps(line) + "\n")

    def get_num_unfinished_requests(self) -> int:
        return 0

    def update_weights(self, state: Dict[str, torch.Tensor]) -> int:
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        tied = {"lm_head.weight"} if getattr(self.model.config, "tie_word_embeddings", False) else set()
        if unexpected or set(missing) - tied:
            raise RuntimeError(
                f"weight update does not match the engine model: missing {missing}, unexpected {unexpected}"
            )
        self.weight_version += 1
        return self.weight_version

    async def init_process_group(self, *args, **kwargs):
        return None

    async def reset_prefix_cache(self):
        return None

    async def sleep(self, level=1):
        return None

    async def wake_up(self, tags=None):
        return None


StandInRolloutEngine.generate_responses = _openrlhf_generate_responses()
StandInRolloutEngineRemote = ray.remote(StandInRolloutEngine)


def create_standin_engines(
    num_engines,
    tensor_parallel_size,
    pretrain,
    seed,
    full_determinism,
    enable_prefix_caching,
    enforce_eager,
    max_model_len,
    shared_pg=None,
    gpu_memory_utilization=None,
    vllm_enable_sleep=False,
    logprobs_mode=None,
    agent_func_path: Optional[str] = None,
    remote_rm_url=None,
    max_images_per_prompt: int = 0,
):
    """``create_vllm_engines``' signature; ``num_engines`` stand-ins without a GPU."""
    return [
        StandInRolloutEngineRemote.options(num_cpus=0, num_gpus=0).remote(
            pretrain,
            seed + i,
            remote_rm_url=remote_rm_url,
            agent_func_path=agent_func_path,
            logprobs=logprobs_mode is not None,
        )
        for i in range(num_engines)
    ]


# ------------------------------------------------------------------------------ policy-actor side
def init_standin_sync(trainer, backend: str) -> None:
    """In place of ``ActorPPOTrainer._init_vllm_sync_group``: the stand-ins take weights through Ray."""
    trainer._model_update_group = None


def broadcast_to_standin_engines(trainer) -> None:
    """In place of ``ActorPPOTrainer.broadcast_to_vllm``: rank 0 sends the full parameters to every engine."""
    import deepspeed

    model = trainer.actor.model.module
    params = list(model.named_parameters())
    with deepspeed.zero.GatheredParameters([p for _, p in params], enabled=trainer.strategy.args.ds.zero_stage == 3):
        if torch.distributed.get_rank() == 0:
            state = {name: p.detach().to("cpu", torch.float32).clone() for name, p in params}
            ray.get([engine.update_weights.remote(state) for engine in trainer.vllm_engines])
    torch.distributed.barrier()
