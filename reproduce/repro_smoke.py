"""``--smoke``: the reproduction pipeline on CPU with a tiny model.

Only the training executor changes: the training command that would go to OpenRLHF is built exactly
as for a GPU run, printed, then parsed here and carried out by a small CPU GRPO loop on a tiny
random Llama (byte-level BPE tokenizer trained on the smoke prompts, chat template included).
Rollouts use ``model.generate``; rewards come from the same reward file OpenRLHF would load
(``--reward.remote_url``); advantages are GRPO's group normalisation; the loss is the project's core
``openrlhf_steer.core.loss.PolicyLoss`` with the row's method (advantage hooks through
``openrlhf_steer.core.advantages.compute_advantages``, controllers at the boundary their ``update_every``
names). Checkpoints are written where OpenRLHF
writes them (``<ckpt.path>/global_step<N>_hf``), so selection, the eval CLI (HF backend, a few
problems) and the table assembly downstream run unchanged.

The numbers of a smoke run test the pipeline, not any method.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

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

    def __init__(self, root: Path, data_dir: Path):
        self.root = Path(root)
        self.data_dir = Path(data_dir)
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

    def model_dir(self) -> Path:
        out = self.model_path
        if not (out / "config.json").is_file():
            rows = [json.loads(line) for line in open(self.source_file(), encoding="utf-8")]
            texts = [r["prompt"][0]["content"] for r in rows]
            pairs = [(r["prompt"], f"Answer: {r['reward_model']['ground_truth']}") for r in rows]
            build_tiny_model(out, texts + [a for _, a in pairs], seed=0, warmup_pairs=pairs)
        return out

    def data_request(self, data: Mapping[str, Any]) -> Dict[str, Any]:
        out = dict(data)
        out["source"] = str(self.source_path)
        if out.get("subset"):
            out["subset_size"] = min(int(out["subset_size"]), 4)
            out["subset_clusters"] = 2
        return out

    def recipe(self, recipe: Mapping[str, Any]) -> Dict[str, Any]:
        r = dict(recipe)
        r.update(
            model=str(self.model_path),
            prompts_per_rollout=4,
            samples_per_prompt=4,
            micro_batch_per_gpu=4,
            rollout_micro_batch_per_gpu=4,
            max_response_len=16,
            max_prompt_len=512,
            epochs=1,
            save_steps=1,
        )
        if "mini_batch_prompts" in r:
            r["mini_batch_prompts"] = 2
        return r

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


# --------------------------------------------------------------------------------------------------
# Parsing the OpenRLHF command back
# --------------------------------------------------------------------------------------------------
def parse_flags(cmd: Sequence[str]) -> Dict[str, List[str]]:
    """``--a.b v1 v2 --c`` -> {"a.b": ["v1", "v2"], "c": []} (everything after ``-m module``)."""
    start = list(cmd).index("-m") + 2 if "-m" in cmd else 0
    flags: Dict[str, List[str]] = {}
    current: Optional[str] = None
    for tok in cmd[start:]:
        if tok.startswith("--"):
            current = tok[2:]
            flags[current] = []
        elif current is not None:
            flags[current].append(tok)
    return flags


def _scalar(text: str) -> Any:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


# --------------------------------------------------------------------------------------------------
# The loss: the project's core PolicyLoss with the row's method (the same code the OpenRLHF adapter runs)
# --------------------------------------------------------------------------------------------------
def make_loss(cmd: Sequence[str], eps_low: float, eps_high: float, dual_clip: Optional[float]):
    """Return (PolicyLoss, Method, implementation label) for the command's ``--entropy.*`` flags, parsed by the
    launcher's own parser (``openrlhf_steer.integration.flags.split_argv``)."""
    from openrlhf_steer.core.loss import PolicyLoss
    from openrlhf_steer.core.types import LossConfig
    from openrlhf_steer.integration.flags import split_argv

    start = list(cmd).index("-m") + 2 if "-m" in cmd else 0
    spec, _ = split_argv(list(cmd[start:]))
    impl = spec.method if spec.enabled else build_grpo()
    loss = PolicyLoss(LossConfig(eps_low=eps_low, eps_high=eps_high, dual_clip=dual_clip), impl)
    names = ",".join(n for n, _ in spec.methods) or "grpo"
    options = {n: c for n, c in spec.methods}
    return loss, impl, f"openrlhf_steer.core.loss.PolicyLoss + method {names!r} {options}"


def build_grpo():
    from openrlhf_steer.methods import build_method

    return build_method("grpo")


# --------------------------------------------------------------------------------------------------
# The CPU GRPO loop
# --------------------------------------------------------------------------------------------------
def _load_reward(path: str):
    spec = importlib.util.spec_from_file_location("reward_func", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.reward_func


def _one(flags: Mapping[str, List[str]], key: str, default: Any = None) -> Any:
    values = flags.get(key)
    if not values:
        if default is None:
            raise ValueError(f"--smoke: the training command has no --{key}")
        return default
    return _scalar(values[0])


def train_from_command(cmd: Sequence[str], steps: int, log_path: Path) -> Dict[str, Any]:
    import torch
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    flags = parse_flags(cmd)
    seed = int(_one(flags, "train.seed", 42))
    random.seed(seed)
    torch.manual_seed(seed)
    model_path = str(_one(flags, "actor.model_name_or_path"))
    tok = PreTrainedTokenizerFast.from_pretrained(model_path, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    reward_func = _load_reward(str(_one(flags, "reward.remote_url")))
    input_key, label_key = _one(flags, "data.input_key", "input"), _one(flags, "data.label_key", "label")
    rows = [
        json.loads(line) for line in open(str(_one(flags, "data.prompt_dataset")), encoding="utf-8") if line.strip()
    ]
    chat = "data.apply_chat_template" in flags
    prompts = [
        (
            tok.apply_chat_template(r[input_key], tokenize=False, add_generation_prompt=True) if chat else r[input_key],
            str(r[label_key]),
        )
        for r in rows
    ]
    n = int(_one(flags, "rollout.n_samples_per_prompt", 1))
    batch_prompts = int(_one(flags, "rollout.batch_size", 1))
    train_batch = int(_one(flags, "train.batch_size", batch_prompts * n))
    eps = flags.get("actor.eps_clip_low_high") or [flags.get("actor.eps_clip", ["0.2"])[0]] * 2
    eps_low, eps_high = float(eps[0]), float(eps[1])
    dual = _one(flags, "actor.dual_clip", 0.0) or None
    max_new = int(_one(flags, "rollout.max_new_tokens", 16))
    temperature, top_p = float(_one(flags, "rollout.temperature", 1.0)), float(_one(flags, "rollout.top_p", 1.0))
    ckpt_dir = Path(str(_one(flags, "ckpt.path")))
    save_steps = int(_one(flags, "ckpt.save_steps", 1))
    loss_fn, impl, loss_impl = make_loss(cmd, eps_low, eps_high, dual)
    from openrlhf_steer.core.advantages import compute_advantages
    from openrlhf_steer.core.types import GroupInputs, LossInputs
    from openrlhf_steer.apps.demo.train import rollout_means

    opt = torch.optim.AdamW(model.parameters(), lr=float(_one(flags, "actor.adam.lr", 1e-6)))
    gen_torch = torch.Generator().manual_seed(seed)
    optimizer_steps = 0
    log_path.parent.mkdir(parents=True, exist_ok=True)
    history = []
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(json.dumps({"event": "start", "loss_impl": loss_impl, "method": impl.name}) + "\n")
        for step in range(1, steps + 1):
            batch = [prompts[((step - 1) * batch_prompts + i) % len(prompts)] for i in range(batch_prompts)]
            enc = tok([p for p, _ in batch], return_tensors="pt", padding=True)
            model.eval()
            with torch.no_grad():
                gen = model.generate(
                    **enc,
                    do_sample=True,
                    temperature=temperature,
                    top_p=top_p,
                    top_k=0,
                    max_new_tokens=max_new,
                    num_return_sequences=n,
                    pad_token_id=tok.pad_token_id,
                )
            seq = gen
            width = enc["input_ids"].shape[1]
            completion = seq[:, width:]
            is_eos = completion.eq(tok.eos_token_id)
            mask = (torch.cumsum(is_eos.long(), 1) - is_eos.long()).eq(0).float()
            # each completion up to and including its EOS, as OpenRLHF decodes a sample (no padding)
            texts = [tok.decode(row[keep.bool()], skip_special_tokens=False) for row, keep in zip(completion, mask)]
            labels = [lab for _, lab in batch for _ in range(n)]
            full_prompts = [p for p, _ in batch for _ in range(n)]
            rewards = torch.stack(
                [reward_func([p + t], [p], [label])["rewards"][0] for p, t, label in zip(full_prompts, texts, labels)]
            )
            attn = torch.cat([enc["attention_mask"].repeat_interleave(n, 0), mask.long()], dim=1)

            def token_logp(with_grad: bool):
                ctx = torch.enable_grad() if with_grad else torch.no_grad()
                with ctx:
                    logits = model(input_ids=seq, attention_mask=attn).logits[:, width - 1 : -1].float() / temperature
                    logprobs = F.log_softmax(logits, dim=-1)
                    lp = logprobs.gather(-1, completion.unsqueeze(-1)).squeeze(-1)
                    ent = -(logprobs.exp() * logprobs).sum(-1)
                return lp, ent

            model.train()
            old_lp, old_ent = token_logp(False)
            group = GroupInputs(
                rewards=rewards.float(),
                group_ids=torch.arange(batch_prompts).repeat_interleave(n),
                response_mask=mask,
                old_log_probs=old_lp,
                entropy=old_ent,
            )
            adv = compute_advantages(group, impl)
            order = torch.randperm(seq.shape[0], generator=gen_torch)
            chunk = max(1, min(train_batch, seq.shape[0]))
            losses, per_window = [], []
            for start in range(0, seq.shape[0], chunk):  # one optimizer step per mini-batch (N_update per rollout)
                idx = order[start : start + chunk]
                lp, ent = token_logp(True)
                inputs = LossInputs(
                    log_probs=lp[idx],
                    old_log_probs=old_lp[idx],
                    advantages=adv[idx],
                    action_mask=mask[idx],
                    entropy=ent[idx],
                    old_entropy=old_ent[idx],
                    step=optimizer_steps,
                    total_steps=steps * max(1, -(-seq.shape[0] // chunk)),
                    generator=gen_torch,
                )
                loss, metrics = loss_fn(inputs)
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                optimizer_steps += 1
                impl.on_boundary("optimizer_step", metrics)
                per_window.append(metrics)
                losses.append(float(loss.detach()))
            impl.on_boundary("rollout_step", rollout_means(per_window))
            entropy = float((old_ent * mask).sum() / mask.sum().clamp_min(1))
            record = {
                "step": step,
                "reward_mean": float(rewards.mean()),
                "loss": sum(losses) / len(losses),
                "entropy": entropy,
                "updates": len(losses),
                "controller": impl.controller_values(),
            }
            history.append(record)
            log.write(json.dumps(record) + "\n")
            if step % save_steps == 0 or step == steps:
                out = ckpt_dir / f"global_step{step}_hf"
                tmp = Path(str(out) + f".tmp{os.getpid()}")
                model.save_pretrained(tmp)
                tok.save_pretrained(tmp)
                if out.exists():
                    import shutil

                    shutil.rmtree(out)
                os.replace(tmp, out)
    return {"loss_impl": loss_impl, "history": history}
