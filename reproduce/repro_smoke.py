"""``--smoke``: the reproduction pipeline on CPU with a tiny model, training through OpenRLHF's own ``train()``.

The row's training command is built as for a GPU run, with the recipe scaled down (a tiny random Llama
with a byte-level BPE tokenizer trained on the smoke prompts, 4 prompts x 4 samples per rollout step,
16 new tokens) and the layout set to one actor GPU and one rollout engine without colocation. That command
is then run by ``tests/support/steertest_e2e_driver.py``, the driver of ``make e2e``: a local Ray cluster
with logical GPUs, OpenRLHF's PPO trainer, experience maker, replay buffer and DeepSpeed policy actor (gloo),
the reward file of ``--reward.remote_url``, checkpoints in ``<ckpt.path>/global_step<N>_hf``. Only the vLLM
engines and the weight broadcast to them are stand-ins (transformers generation, weights through Ray), with
the CUDA-only calls that driver's docstring lists. Selection, the eval CLI (HF backend, a few problems) and
the table assembly downstream run unchanged.

The stand-in engine is test support, so ``--smoke`` needs a source checkout (``tests/support``); the
numbers of a smoke run test the pipeline, not any method.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from openrlhf_steer_eval.atomic_io import atomic_write_text

SMOKE_BENCH_LIMIT = 2  # problems per benchmark in smoke evaluation
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


# --------------------------------------------------------------------------------------------------
# Set-up: tiny model, tiny training source, reduced recipe / sampling
# --------------------------------------------------------------------------------------------------
class SmokeSetup:
    train_prompts = 8
    prompts_per_rollout = 4
    subset_prompts = 4  # data-diversity rows: the subset is cut to this many prompts

    def __init__(self, root: Path, data_dir: Path, steps: int = 2):
        if steps < 1:
            raise ValueError(f"--smoke-steps={steps}: need at least 1 training step")
        self.root = Path(root)
        self.data_dir = Path(data_dir)
        self.steps = int(steps)
        # A tiny model gains nothing from threads, and on a shared CPU they cost a lot (tiny_models.md §5).
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        import torch

        torch.set_num_threads(1)
        punkt = self.data_dir / "ifeval" / "nltk_data"
        if punkt.is_dir():  # IF-Eval's checkers need NLTK's punkt_tab offline; the eval subprocesses inherit it
            os.environ.setdefault("NLTK_DATA", str(punkt))

    # training source: a few AMC23 problems from the shared eval data in DAPO-Math-17k's own format
    @property
    def source_path(self) -> Path:
        return self.root / "dapo_format_source.jsonl"

    @property
    def model_path(self) -> Path:
        return self.root / "tiny-llama"

    def materialize(self) -> None:
        """Write the smoke training source and build the tiny model (skipped by --dry-run)."""
        self.source_file()
        self.model_dir()

    def source_file(self) -> Path:
        out = self.source_path
        if out.is_file():
            return out
        src = self.data_dir / "amc23" / "test.jsonl"
        if not src.is_file():
            raise FileNotFoundError(
                f"--smoke needs the shared eval data: {src} is missing (set --data-dir or OPENRLHF_STEER_DATA)"
            )
        from openrlhf_steer.data import format_dapo_prompt

        rows = []
        with open(src, encoding="utf-8") as handle:
            for i, line in enumerate(handle):
                if i >= self.train_prompts:
                    break
                item = json.loads(line)
                answer = str(item["answer"])
                answer = answer[:-2] if answer.endswith(".0") else answer
                rows.append(
                    {
                        "data_source": "math_dapo",
                        "prompt": [{"role": "user", "content": format_dapo_prompt(item["problem"])}],
                        "reward_model": {"ground_truth": answer, "style": "rule-lighteval/MATH_v2"},
                        "extra_info": {"index": f"amc23-{item.get('id', i)}"},
                    }
                )
        atomic_write_text(out, "".join(json.dumps(r) + "\n" for r in rows))
        return out

    def warmup_texts(self) -> Tuple[List[str], List[Tuple[Any, str]]]:
        """(tokenizer texts, warm-up (chat prompt, reply) pairs) of the smoke source.

        The reply ``Answer: \\boxed{<answer>}`` is right under both papers' training rules (Pos-Adv's last
        ``Answer:`` line and STEER's strict last ``\\boxed{}``), so every table's smoke rows get mixed rewards.
        """
        rows = [json.loads(line) for line in open(self.source_file(), encoding="utf-8") if line.strip()]
        pairs = [(r["prompt"], "Answer: \\boxed{" + str(r["reward_model"]["ground_truth"]) + "}") for r in rows]
        return [r["prompt"][0]["content"] for r in rows] + [reply for _, reply in pairs], pairs

    def model_dir(self) -> Path:
        out = self.model_path
        if not (out / "config.json").is_file():
            texts, pairs = self.warmup_texts()
            build_tiny_model(out, texts, seed=0, warmup_pairs=pairs)
        return out

    def data_request(self, data: Mapping[str, Any]) -> Dict[str, Any]:
        out = dict(data)
        out["source"] = str(self.source_path)
        if out.get("subset"):
            out["subset_size"] = min(int(out["subset_size"]), self.subset_prompts)
            out["subset_clusters"] = 2
            out["subset_embed_model"] = str(self.model_path)  # App. D.3's featuriser, on the tiny model
        return out

    def recipe(self, recipe: Mapping[str, Any]) -> Dict[str, Any]:
        """The row's recipe scaled down; episodes are chosen so that OpenRLHF runs ``steps`` rollout steps
        (exactly when the steps per episode divide it, else the next multiple)."""
        r = dict(recipe)
        prompts = min(int(r["subset_size"]), self.subset_prompts) if r.get("subset") else self.train_prompts
        per_episode = max(prompts // self.prompts_per_rollout, 1)
        r.update(
            model=str(self.model_path),
            prompts_per_rollout=self.prompts_per_rollout,
            samples_per_prompt=4,
            micro_batch_per_gpu=4,
            rollout_micro_batch_per_gpu=4,
            max_response_len=16,
            max_prompt_len=512,
            epochs=math.ceil(self.steps / per_episode),
            save_steps=1,
        )
        if "mini_batch_prompts" in r:
            r["mini_batch_prompts"] = 2
        return r

    @staticmethod
    def layout():
        """One actor GPU and one rollout engine, not colocated: the stand-in engine takes no GPU of its own."""
        from repro_pipeline import Layout

        return Layout(nodes=1, gpus_per_node=1, vllm_tp=1, colocate=False)

    def eval_sampling(self, sampling: Mapping[str, Any]) -> Dict[str, Any]:
        s = dict(sampling)
        s.update(n=2, k=[1, 2], max_tokens=16)
        return s

    def selection(self, selection: Mapping[str, Any]) -> Dict[str, Any]:
        s = dict(selection)
        s.update(min_step=0, every=1)
        s.pop("n", None)
        return s

    def eval_extra(self, benchmarks: Sequence[str] = ()) -> Dict[str, Any]:
        from repro_pipeline import eval_data_args

        extra = {"limit": SMOKE_BENCH_LIMIT, "device": "cpu", "dtype": "float32", "grader_workers": 0}
        extra.update(eval_data_args(self.data_dir, benchmarks))
        return extra

    # Not run in smoke mode: LiveCodeBench's problems are not in the offline eval data (only a
    # non-canonical 20-problem sample is), so a smoke run cannot load its release.
    SKIPPED_BENCHMARKS = ("livecodebench",)

    def benchmarks(self, benchmarks: Sequence[str]) -> List[str]:
        return [b for b in benchmarks if b not in self.SKIPPED_BENCHMARKS]


def build_tiny_model(
    out_dir: Path,
    texts: Sequence[str],
    seed: int = 0,
    vocab_size: int = 384,
    warmup_pairs: Sequence[Tuple[Any, str]] = (),
    warmup_steps: int = 100,
    architecture: str = "llama",
) -> Path:
    """A tiny Llama (~33k parameters with the default vocabulary; ``architecture="qwen2"`` for the paper
    models' family) and a byte-level BPE trained on ``texts``, saved as an HF folder.

    ``warmup_pairs`` (chat prompt, target reply) get a short supervised warm-up so that sampled replies are
    sometimes right and sometimes wrong: GRPO groups then have mixed rewards, non-zero advantages, and the
    smoke run exercises the method's loss with a real gradient instead of an all-zero one.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    families = {"llama": (LlamaConfig, LlamaForCausalLM), "qwen2": (Qwen2Config, Qwen2ForCausalLM)}
    if architecture not in families:
        raise ValueError(f"architecture={architecture!r}: choose one of {sorted(families)}")
    config_cls, model_cls = families[architecture]

    specials = ["<pad>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="<|im_end|>", bos_token="<|im_start|>"
    )
    fast.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    config = config_cls(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        pad_token_id=fast.pad_token_id,
        eos_token_id=fast.eos_token_id,
        bos_token_id=fast.bos_token_id,
        tie_word_embeddings=True,
    )
    model = model_cls(config)
    if warmup_pairs:
        _warm_up(model, fast, warmup_pairs, warmup_steps)
    tmp = Path(str(out_dir) + f".tmp{os.getpid()}")
    model.save_pretrained(tmp)
    fast.save_pretrained(tmp)
    if Path(out_dir).exists():
        import shutil

        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return Path(out_dir)


def _warm_up(model, tok, pairs: Sequence[Tuple[Any, str]], steps: int, lr: float = 3e-3) -> None:
    """A few full-batch steps of next-token loss on the replies only (prompt tokens masked)."""
    import torch

    ids, labels = [], []
    for chat, reply in pairs:
        prompt = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        r_ids = tok(reply, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        ids.append(p_ids + r_ids)
        labels.append([-100] * len(p_ids) + r_ids)
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), tok.pad_token_id)
    label_ids = torch.full((len(ids), width), -100)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, (x, y) in enumerate(zip(ids, labels)):
        input_ids[i, : len(x)], label_ids[i, : len(y)], mask[i, : len(x)] = torch.tensor(x), torch.tensor(y), 1
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=input_ids, attention_mask=mask, labels=label_ids).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def load_reward_func(path: str):
    """``reward_func`` of a reward file, loaded the way OpenRLHF loads ``--reward.remote_url`` files."""
    spec = importlib.util.spec_from_file_location("reward_func", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.reward_func


# --------------------------------------------------------------------------------------------------
# Training: the row's command through OpenRLHF's train() (the make e2e driver)
# --------------------------------------------------------------------------------------------------
SUPPORT = Path(__file__).resolve().parent.parent / "tests" / "support"
DRIVER = SUPPORT / "steertest_e2e_driver.py"
# The stand-in engines take the weights through Ray, so no NCCL group is made.
SMOKE_TRAIN_FLAGS = ("--vllm.sync_backend", "gloo")


def _absent(module: str) -> bool:
    """The package is not installed (its test-support import stub, if found, does not count)."""
    spec = importlib.util.find_spec(module)
    return spec is None or Path(spec.origin or "").resolve().is_relative_to((SUPPORT / "stubs").resolve())


class OpenRLHFSmokeRun:
    """One row's training command, run by the e2e driver in a fresh local Ray cluster."""

    def __init__(self, cmd: Sequence[str], row_dir: Path, python: str = sys.executable):
        if not DRIVER.is_file():
            raise FileNotFoundError(
                f"--smoke trains through the test-support driver {DRIVER}, which is not here: "
                "run --smoke from a source checkout (git clone), not from an installed package"
            )
        cmd = list(cmd)
        self.argv = cmd[cmd.index("-m") + 2 :] + list(SMOKE_TRAIN_FLAGS)
        self.row_dir = Path(row_dir)
        self.python = python
        self.plan_path = self.row_dir / "smoke_plan.json"
        self.results_path = self.row_dir / "smoke_results.jsonl"
        self.report_path = self.row_dir / "smoke_report.jsonl"

    def command(self) -> List[str]:
        return [self.python, str(DRIVER), str(self.plan_path)]

    def env(self) -> Dict[str, str]:
        """The driver's own environment (``driver_env``); the import stubs only where OpenRLHF's module-level
        imports of vllm / flash_attn would fail."""
        spec = importlib.util.spec_from_file_location("steertest_e2e_driver", DRIVER)
        driver = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(driver)  # type: ignore[union-attr]
        return driver.driver_env(self.report_path, with_stubs=_absent("vllm") or _absent("flash_attn"))

    def write_plan(self) -> None:
        self.row_dir.mkdir(parents=True, exist_ok=True)
        for stale in (self.results_path, self.report_path):
            stale.unlink(missing_ok=True)
        plan = {
            "results": str(self.results_path),
            "num_cpus": 4,
            "num_gpus": 1,
            "runs": [{"name": self.row_dir.name, "argv": self.argv}],
        }
        atomic_write_text(self.plan_path, json.dumps(plan, indent=2) + "\n")

    def check(self, log_path: Path) -> Dict[str, Any]:
        """The driver's result for the run; a failed or missing run raises with its error and the log's tail."""
        results = []
        if self.results_path.is_file():
            results = [json.loads(line) for line in self.results_path.read_text().splitlines() if line.strip()]
        result = results[-1] if results else None
        if result is None or result["rc"] != 0 or result["error"] is not None:
            tail = Path(log_path).read_text(errors="replace")[-3000:] if Path(log_path).is_file() else ""
            why = "no result (the driver stopped early)" if result is None else f"rc={result['rc']} {result['error']}"
            raise RuntimeError(f"[train] --smoke: OpenRLHF training failed: {why}; log: {log_path}\n{tail}")
        return result

    def loss_classes(self) -> List[str]:
        """The loss class each policy actor used (from the driver's report)."""
        if not self.report_path.is_file():
            return []
        lines = [json.loads(line) for line in self.report_path.read_text().splitlines() if line.strip()]
        return [line["loss_class"] for line in lines if line.get("event") == "policy_actor"]
