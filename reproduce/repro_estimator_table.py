"""STEER's Figure 2 table: entropy-change estimators against the measured per-token entropy change.

For every model of the table, the first ``steps`` GRPO rollout steps are run single-process with
transformers (the STEER recipe: DAPO-Math-17k prompts, G samples per prompt, mini-batch updates with
AdamW at the run's learning rate). Around every optimizer step the full-vocabulary entropy of every
valid token of that mini-batch is computed at its own prefix before and after the step; the measured
change is ``Delta H = H(pi^{k+1} | s) - H(pi^k | s)`` (STEER Theorem 1). The estimates, made before
the step from the same forward pass, are used RAW, without any fitted scale:

* Omega (STEER Eq. 7): ``-eta * I_clip * r A (1 - p)^2 (log p + H)`` with the run's learning rate
  ``eta`` and the clip indicator of Eq. 6 (core: ``openrlhf_steer.core.estimators.first_order_entropy_change``);
* Cov (Cui et al. 2025b): ``-(A - mean A)(log p - mean log p)`` per token, centred over the
  mini-batch (core: ``covariance_entropy_change``); ``estimator.cov_learning_rate`` multiplies it by
  ``eta`` (Cui et al.'s theorem ``Delta H ~ -eta Cov``). Both variants are reported.

MSE, PCC and SRCC are taken over all tokens of all steps of one model. Outputs in ``--output-dir``:
``models/<model>/tokens.npz`` (one per model; a finished model is skipped on re-run), then
``steer_figure2.md`` / ``.json`` (ours next to the paper, printed as the paper prints) and
``steer_figure2.png`` (estimate vs measured change). ``--smoke`` runs the same code on CPU with a
tiny random Qwen2 (float64, a few prompts and steps).
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from openrlhf_steer_eval.atomic_io import atomic_path, atomic_write_text

METRICS = ("MSE", "PCC", "SRCC")
BYTES_PER_PARAM = 16  # fp32 weights + fp32 gradients + AdamW's two fp32 moments
PARAMS_B = {"Qwen/Qwen2.5-Math-1.5B": 1.54, "Qwen/Qwen2.5-7B": 7.62, "Qwen/Qwen2.5-Math-7B": 7.62}


# --------------------------------------------------------------------------------------------------
# The math (pure functions)
# --------------------------------------------------------------------------------------------------
def omega_estimate(log_probs, old_log_probs, entropy, advantages, lr: float, eps_low: float, eps_high: float):
    """STEER Eq. 7, the predicted entropy change itself: -eta * I_clip * r A (1 - p)^2 (log p + H)."""
    from openrlhf_steer.core.estimators import omega_entropy_change

    return omega_entropy_change(
        log_probs, old_log_probs, entropy, advantages, lr=lr, eps_low=eps_low, eps_high=eps_high
    )


def cov_estimate(log_probs, advantages, lr: Optional[float] = None):
    """Cui et al.'s per-token covariance term over a flat vector of valid tokens, as a predicted change:
    -cov_t, or -eta * cov_t when ``lr`` is given."""
    from openrlhf_steer.core.estimators import covariance_entropy_change_estimate

    return covariance_entropy_change_estimate(log_probs, advantages, lr=lr)


def agreement(estimate: Sequence[float], truth: Sequence[float]) -> Dict[str, float]:
    """MSE, Pearson (PCC) and Spearman (SRCC) of the raw estimate against the measured change."""
    from openrlhf_steer.core.stats import agreement as figure2_agreement

    return figure2_agreement(estimate, truth)


def _compact_exponent(text: str) -> str:
    return re.sub(r"e([+-])0*(\d)", lambda m: "e" + ("-" if m.group(1) == "-" else "") + m.group(2), text)


def paper_format(metric: str, value: Optional[float]) -> str:
    """As the Figure 2 table prints: two decimals, or one significant digit in e-notation where two decimals
    would print 0.00 (MSE "5.37" / "5e-4"); correlations signed ("+0.42", "-6e-5")."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    signed = metric != "MSE"
    if value == 0 or abs(value) >= 0.005:
        return f"{value:+.2f}" if signed else f"{value:.2f}"
    return _compact_exponent(f"{value:+.0e}" if signed else f"{value:.0e}")


# --------------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------------
@dataclass
class EstimatorSpec:
    steps: int
    lr: float
    prompts_per_step: int
    samples_per_prompt: int
    mini_batch_prompts: int
    micro_batch: int
    rollout_prompts: int
    eps_low: float
    eps_high: float
    max_new_tokens: int
    temperature: float
    top_p: float
    weight_decay: float
    grad_clip: float
    seed: int
    dtype: str
    cov_learning_rate: bool
    apply_chat_template: bool
    gradient_checkpointing: bool

    @classmethod
    def from_config(cls, config) -> "EstimatorSpec":
        r, e = config.values("recipe"), config.values("estimator")
        return cls(
            steps=int(e["steps"]),
            lr=float(r["lr"]),
            prompts_per_step=int(r["prompts_per_rollout"]),
            samples_per_prompt=int(r["samples_per_prompt"]),
            mini_batch_prompts=int(r["mini_batch_prompts"]),
            micro_batch=int(e.get("micro_batch", 1)),
            rollout_prompts=int(e.get("rollout_prompts", 8)),
            eps_low=float(r["eps_clip_low"]),
            eps_high=float(r["eps_clip_high"]),
            max_new_tokens=int(r["max_response_len"]),
            temperature=float(r["temperature"]),
            top_p=float(r["top_p"]),
            weight_decay=float(r.get("weight_decay", 0.0)),
            grad_clip=float(r.get("grad_clip") or 0.0),
            seed=int(r.get("seed", 0)),
            dtype=str(e.get("dtype", "float32")),
            cov_learning_rate=bool(e.get("cov_learning_rate", False)),
            apply_chat_template=bool(r.get("apply_chat_template", True)),
            gradient_checkpointing=bool(r.get("gradient_checkpointing", False)),
        )

    def smoke(self) -> "EstimatorSpec":
        """CPU smoke: a few prompts, short answers, float64 so that eta = 1e-6 changes stay above rounding."""
        return EstimatorSpec(
            **{
                **asdict(self),
                "steps": 3,
                "prompts_per_step": 2,
                "samples_per_prompt": 4,
                "mini_batch_prompts": 1,
                "micro_batch": 8,
                "rollout_prompts": 2,
                "max_new_tokens": 12,
                "dtype": "float64",
                "gradient_checkpointing": False,
            }
        )


def memory_estimate_gb(model: str) -> Optional[float]:
    """Optimizer-state memory of one full fine-tuning step (activations and logits come on top)."""
    billions = PARAMS_B.get(model)
    return None if billions is None else round(billions * BYTES_PER_PARAM, 1)


# --------------------------------------------------------------------------------------------------
# The measurement (transformers, single process)
# --------------------------------------------------------------------------------------------------
@dataclass
class Sample:
    prompt_ids: List[int]
    completion_ids: List[int]  # up to and including the first EOS
    group: int
    reward: float = 0.0


class Policy:
    """A causal LM and its tokenizer with the few passes the measurement needs."""

    def __init__(self, model, tokenizer, spec: EstimatorSpec):
        self.model, self.tok, self.spec = model, tokenizer, spec
        self.device = next(model.parameters()).device
        eos = model.generation_config.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, (list, tuple)) else [eos]) | {tokenizer.eos_token_id}
        self.eos_ids.discard(None)

    def generate(self, prompts: Sequence[str], group_offset: int) -> List[Sample]:
        import torch

        enc = self.tok(list(prompts), return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        self.model.eval()
        with torch.no_grad():  # plain sampling, as the training rollouts (no penalty from a generation_config)
            out = self.model.generate(
                **enc,
                do_sample=True,
                temperature=self.spec.temperature,
                top_p=self.spec.top_p,
                top_k=0,
                repetition_penalty=1.0,
                max_new_tokens=self.spec.max_new_tokens,
                num_return_sequences=self.spec.samples_per_prompt,
                pad_token_id=self.tok.pad_token_id,
            )
        width = enc["input_ids"].shape[1]
        samples = []
        for i, row in enumerate(out):
            prompt_row = enc["input_ids"][i // self.spec.samples_per_prompt]
            keep = enc["attention_mask"][i // self.spec.samples_per_prompt].bool()
            completion = row[width:].tolist()
            cut = next((j + 1 for j, t in enumerate(completion) if t in self.eos_ids), len(completion))
            group = group_offset + i // self.spec.samples_per_prompt
            samples.append(Sample(prompt_row[keep].tolist(), completion[:cut], group))
        return samples

    def _pack(self, samples: Sequence[Sample]):
        """Left-padded prompts, right-padded completions; positions follow the attention mask."""
        import torch

        width = max(len(s.prompt_ids) for s in samples)
        length = max(len(s.completion_ids) for s in samples)
        pad = self.tok.pad_token_id
        ids = torch.full((len(samples), width + length), pad, dtype=torch.long)
        attn = torch.zeros_like(ids)
        comp = torch.full((len(samples), length), pad, dtype=torch.long)
        mask = torch.zeros((len(samples), length))
        for i, s in enumerate(samples):
            p, c = len(s.prompt_ids), len(s.completion_ids)
            ids[i, width - p : width] = torch.tensor(s.prompt_ids)
            ids[i, width : width + c] = torch.tensor(s.completion_ids)
            attn[i, width - p : width + c] = 1
            comp[i, :c] = torch.tensor(s.completion_ids)
            mask[i, :c] = 1
        return ids, attn, comp, mask, width

    def token_stats(self, samples: Sequence[Sample], grad: bool):
        """(log p of the sampled tokens, full-vocabulary entropy [detached], completion mask), [B, T] each."""
        import torch

        from openrlhf_steer.core.entropy import token_logprobs_and_entropy

        ids, attn, comp, mask, width = self._pack(samples)
        ids, attn, comp, mask = (t.to(self.device) for t in (ids, attn, comp, mask))
        positions = (attn.cumsum(-1) - 1).clamp(min=0)
        self.model.train(grad)  # train mode only for gradient checkpointing; the Qwen2 configs have no dropout
        with torch.set_grad_enabled(grad):
            logits = self.model(input_ids=ids, attention_mask=attn, position_ids=positions, use_cache=False).logits[
                :, width - 1 : -1
            ]
            log_p, entropy = token_logprobs_and_entropy(logits, comp, temperature=self.spec.temperature, mask=mask)
        return log_p, entropy.detach(), mask.to(log_p.dtype)


def _chunks(items: Sequence[Any], size: int) -> List[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def measure_model(
    policy: Policy,
    prompts: Sequence[Tuple[str, str]],
    reward_fn: Callable[[str, str, str], float],
    spec: EstimatorSpec,
    progress: bool = True,
    step_log: Optional[List[Dict[str, float]]] = None,
) -> Dict[str, np.ndarray]:
    """Run ``spec.steps`` GRPO rollout steps; per valid token of every mini-batch: the measured entropy change
    over its optimizer step and the raw estimates made before it.

    The steps run on the training-step runtime every adapter shares (``openrlhf_steer.runtime.StepRuntime``:
    seeds, metric windows reduced once per optimizer step, rollout boundaries); ``step_log``, when given,
    receives each rollout step's logged means, the same metric names as the demo and the OpenRLHF actor."""
    import torch
    from tqdm import tqdm

    from openrlhf_steer.core.advantages import compute_advantages
    from openrlhf_steer.core.loss import PolicyLoss
    from openrlhf_steer.core.types import GroupInputs, LossConfig, LossInputs
    from openrlhf_steer.methods import build_method
    from openrlhf_steer.runtime import StepRuntime

    needed = spec.steps * spec.prompts_per_step
    if len(prompts) < needed:
        raise ValueError(
            f"{spec.steps} steps x {spec.prompts_per_step} prompts need {needed} prompts; the data has {len(prompts)}"
        )
    torch.manual_seed(spec.seed)
    opt = torch.optim.AdamW(policy.model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    method = build_method("grpo")
    loss_fn = PolicyLoss(LossConfig(eps_low=spec.eps_low, eps_high=spec.eps_high), method)
    runtime = StepRuntime(method, seed=spec.seed)
    columns: Dict[str, List[np.ndarray]] = {k: [] for k in COLUMNS}
    per_update = spec.mini_batch_prompts * spec.samples_per_prompt
    bar = tqdm(
        total=spec.steps * -(-spec.prompts_per_step // spec.mini_batch_prompts),
        desc="figure2 optimizer steps",
        disable=not progress,
        leave=False,
    )
    for step in range(1, spec.steps + 1):
        batch = prompts[(step - 1) * spec.prompts_per_step : step * spec.prompts_per_step]
        samples: List[Sample] = []
        for chunk in _chunks(batch, spec.rollout_prompts):
            samples += policy.generate([p for p, _ in chunk], group_offset=len(samples) // spec.samples_per_prompt)
        for s in samples:
            prompt, label = batch[s.group]
            s.reward = float(reward_fn(prompt, policy.tok.decode(s.completion_ids, skip_special_tokens=False), label))
        # GRPO over the whole rollout: pi_old's log-probs, group-normalised advantages
        mask_all = completion_mask(samples)
        old_all = _stack_rows(
            [policy.token_stats(m, grad=False)[0].cpu() for m in _chunks(samples, spec.micro_batch)], mask_all.shape[1]
        )
        adv_all = compute_advantages(
            GroupInputs(
                rewards=torch.tensor([s.reward for s in samples]),
                group_ids=torch.tensor([s.group for s in samples]),
                response_mask=mask_all,
            )
        )
        for first in range(0, len(samples), per_update):
            rows = list(range(first, min(first + per_update, len(samples))))
            micro = [rows[i : i + spec.micro_batch] for i in range(0, len(rows), spec.micro_batch)]
            before = [policy.token_stats([samples[i] for i in m], grad=False) for m in micro]  # pi^k
            n_tokens = sum(float(mask.sum()) for _, _, mask in before)
            generator = runtime.reseed()
            for m, (_, _, mask) in zip(micro, before):
                lp, _, _ = policy.token_stats([samples[i] for i in m], grad=True)
                adv, old = (_rows(t, m, lp) for t in (adv_all, old_all))
                loss, metrics = loss_fn(
                    LossInputs(log_probs=lp, old_log_probs=old, advantages=adv, action_mask=mask, generator=generator),
                    num_tokens=n_tokens,
                )  # token-mean over the whole mini-batch
                loss.backward()
                runtime.record(metrics, mask.sum())
            extra = {}
            if spec.grad_clip > 0:
                extra["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(policy.model.parameters(), spec.grad_clip))
            opt.step()
            runtime.end_optimizer_step(extra=extra)
            opt.zero_grad(set_to_none=True)  # frees the gradients before the next passes and rollouts
            after = [policy.token_stats([samples[i] for i in m], grad=False)[1] for m in micro]  # pi^{k+1}
            flat: Dict[str, List[Any]] = {k: [] for k in ("lp", "h", "dh", "adv", "old")}
            for m, (lp_b, h_b, mask), h_a in zip(micro, before, after):
                valid = mask.bool()
                for key, value in (
                    ("lp", lp_b),
                    ("h", h_b),
                    ("dh", h_a - h_b),
                    ("adv", _rows(adv_all, m, lp_b)),
                    ("old", _rows(old_all, m, lp_b)),
                ):
                    flat[key].append(value[valid])
            lp, h, dh, adv, old = (torch.cat(flat[k]).double() for k in ("lp", "h", "dh", "adv", "old"))
            record = {
                "step": torch.full_like(lp, step),
                "advantage": adv,
                "prob": lp.exp(),
                "ratio": (lp - old).exp(),
                "entropy": h,
                "delta_entropy": dh,
                "omega": omega_estimate(lp, old, h, adv, spec.lr, spec.eps_low, spec.eps_high),
                "cov": cov_estimate(lp, adv),
                "cov_lr": cov_estimate(lp, adv, spec.lr),
            }
            for key in COLUMNS:
                columns[key].append(record[key].detach().cpu().numpy())
            bar.update(1)
        logged = runtime.end_rollout_step()
        if step_log is not None:
            step_log.append({"step": step, **logged})
    bar.close()
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in columns.items()}


COLUMNS = ("step", "advantage", "prob", "ratio", "entropy", "delta_entropy", "omega", "cov", "cov_lr")


def completion_mask(samples: Sequence[Sample]):
    """[N, T] mask of the completions, right-padded to the longest."""
    import torch

    length = max(len(s.completion_ids) for s in samples)
    mask = torch.zeros((len(samples), length))
    for i, s in enumerate(samples):
        mask[i, : len(s.completion_ids)] = 1
    return mask


def _stack_rows(chunks, width: int):
    import torch

    return torch.cat([torch.nn.functional.pad(c, (0, width - c.shape[1])) for c in chunks])


def _rows(table, rows: Sequence[int], like):
    """``table[rows]`` cut to ``like``'s width, on its device and dtype."""
    return table[list(rows), : like.shape[1]].to(like.device, like.dtype)


# --------------------------------------------------------------------------------------------------
# Models, prompts, reward
# --------------------------------------------------------------------------------------------------
def load_policy(model: str, spec: EstimatorSpec) -> Policy:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = getattr(torch, spec.dtype)
    on_gpu = torch.cuda.is_available()
    # device_map="auto" spreads a model over every visible GPU when one cannot hold it (7B: see memory_estimate_gb)
    net = AutoModelForCausalLM.from_pretrained(model, dtype=dtype, device_map="auto" if on_gpu else None)
    if spec.gradient_checkpointing:
        net.gradient_checkpointing_enable()
    tok = AutoTokenizer.from_pretrained(model, padding_side="left")
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return Policy(net, tok, spec)


def build_smoke_qwen2(smoke) -> Path:
    """A tiny random Qwen2 (the paper models' architecture) on the smoke's byte-level BPE, with the smoke's
    short supervised warm-up so that sampled answers are sometimes right: GRPO groups then have mixed rewards."""
    import repro_smoke

    out = smoke.root / "tiny-qwen2"
    if (out / "config.json").is_file():
        return out
    texts, pairs = smoke.warmup_texts()
    return repro_smoke.build_tiny_model(out, texts, seed=0, warmup_pairs=pairs, warmup_steps=100, architecture="qwen2")


def load_prompts(data_path: Path, tokenizer, spec: EstimatorSpec) -> List[Tuple[str, str]]:
    """(prompt text, gold answer) of the prepared DAPO-Math-17k file, shuffled with the run's seed ([assumed]
    as veRL's shuffling data loader)."""
    import random

    import repro_pipeline as pipeline

    prompts = []
    for line in open(data_path, encoding="utf-8"):
        if not line.strip():
            continue
        row = json.loads(line)
        chat = row[pipeline.INPUT_KEY]
        text = (
            tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
            if spec.apply_chat_template
            else chat[-1]["content"]
        )
        prompts.append((text, str(row[pipeline.LABEL_KEY])))
    random.Random(spec.seed).shuffle(prompts)
    return prompts


def load_reward(recipe: Mapping[str, Any]) -> Callable[[str, str, str], float]:
    """The training reward OpenRLHF would load for this recipe (its ``reward_rule``), per sample."""
    import repro_pipeline as pipeline
    import repro_smoke

    reward_func = repro_smoke.load_reward_func(str(pipeline.reward_file(recipe)))
    return lambda prompt, completion, label: float(reward_func([prompt + completion], [prompt], [label])["rewards"][0])


# --------------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------------
def estimate_key(row: Mapping[str, Any], cov_learning_rate: bool) -> str:
    estimator = str(row["estimator"])
    if estimator not in ("omega", "cov"):
        raise ValueError(f"estimator {estimator!r} is not one of omega, cov")
    return "cov_lr" if estimator == "cov" and cov_learning_rate else estimator


def build_table(config, tokens: Mapping[str, Mapping[str, np.ndarray]], spec: EstimatorSpec) -> Dict[str, Any]:
    """Ours next to the paper's printed numbers, per row of the config; the other Cov variant beside."""
    rows = []
    for row in config.analysis_rows:
        arrays = tokens.get(str(row["model"]))
        ours = other = None
        if arrays is not None:
            key = estimate_key(row, spec.cov_learning_rate)
            ours = agreement(arrays[key], arrays["delta_entropy"])
            if row["estimator"] == "cov":
                other_key = "cov" if key == "cov_lr" else "cov_lr"
                other = {"estimate": other_key, **agreement(arrays[other_key], arrays["delta_entropy"])}
        paper = {m: row["paper"].get(m) for m in METRICS}
        rows.append(
            {
                "model": row["model"],
                "model_label": row.get("model_label", row["model"]),
                "label": row["label"],
                "estimator": row["estimator"],
                "ours": ours,
                "paper": paper,
                "ours_printed": {m: paper_format(m, None if ours is None else ours[m]) for m in METRICS},
                "paper_printed": {m: str(row.get("printed", {}).get(m, paper_format(m, paper[m]))) for m in METRICS},
                "other_cov_variant": other,
            }
        )
    measured = {
        model: {
            "tokens": int(a["delta_entropy"].size),
            "mean_abs_delta_entropy": float(np.mean(np.abs(a["delta_entropy"]))),
            "mean_sq_delta_entropy": float(np.mean(a["delta_entropy"] ** 2)),
        }
        for model, a in tokens.items()
    }
    return {
        "table": config.table,
        "title": config.title,
        "paper": config.paper,
        "settings": asdict(spec),
        "cov_estimate": "-eta * cov_t" if spec.cov_learning_rate else "-cov_t (no learning rate)",
        "omega_estimate": "-eta * I_clip * r A (1 - p)^2 (log p + H) (STEER Eq. 7, raw)",
        "rows": rows,
        "measured": measured,
    }


def markdown(table: Mapping[str, Any], smoke: bool) -> str:
    head = "| Model | Method | " + " | ".join(f"{m} ours | {m} paper" for m in METRICS) + " | tokens |"
    lines = [f"# {table['title']}", ""]
    if smoke:
        lines += ["**Smoke run** (tiny random Qwen2 on CPU): the numbers test the pipeline, not the paper.", ""]
    lines += [head, "|" + "---|" * (3 + 2 * len(METRICS))]
    for row in table["rows"]:
        cells = " | ".join(f"{row['ours_printed'][m]} | {row['paper_printed'][m]}" for m in METRICS)
        n = row["ours"]["n"] if row["ours"] else "-"
        lines.append(f"| {row['model_label']} | {row['label']} | {cells} | {n} |")
    lines += [
        "",
        f"Estimates are raw (no fitted scale). Ours: Omega = {table['omega_estimate']}; "
        f"Cov = {table['cov_estimate']}; eta = {table['settings']['lr']:g}.",
        "",
    ]
    others = [r for r in table["rows"] if r["other_cov_variant"]]
    if others:
        lines += [
            "Other Cov variant ("
            + others[0]["other_cov_variant"]["estimate"]
            + "): "
            + "; ".join(
                f"{r['model_label']}: "
                + ", ".join(f"{m} {paper_format(m, r['other_cov_variant'][m])}" for m in METRICS)
                for r in others
            ),
            "",
        ]
    for model, stats in table["measured"].items():
        lines.append(
            f"- {model}: {stats['tokens']} tokens, mean |Delta H| {stats['mean_abs_delta_entropy']:.3g}, "
            f"mean Delta H^2 {stats['mean_sq_delta_entropy']:.3g} (the MSE of a zero estimate)"
        )
    return "\n".join(lines) + "\n"


def plot(
    tokens: Mapping[str, Mapping[str, np.ndarray]], table: Mapping[str, Any], path: Path, max_points: int = 20000
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator

    from openrlhf_steer.apps.demo.analyses.estimator import symlog_ticks

    models = list(tokens)
    cov_key = "cov_lr" if table["settings"]["cov_learning_rate"] else "cov"
    fig, axes = plt.subplots(len(models), 2, figsize=(10, 4 * len(models)), squeeze=False)
    rng = np.random.default_rng(0)
    for r, model in enumerate(models):
        a = tokens[model]
        pick = rng.permutation(a["delta_entropy"].size)[:max_points]
        truth = a["delta_entropy"][pick]
        for c, (key, title) in enumerate((("omega", "Omega (STEER Eq. 7)"), (cov_key, "Cov (Cui et al.)"))):
            ax = axes[r][c]
            x = a[key][pick]
            ax.scatter(x, truth, s=4, alpha=0.4)
            for axis, values in (("x", x), ("y", truth)):
                largest = float(np.max(np.abs(values))) if values.size else 0.0
                if largest > 0:  # heavy tails: a symmetric log scale shows both the bulk and the tails
                    linthresh = largest * 1e-4
                    getattr(ax, f"set_{axis}scale")("symlog", linthresh=linthresh)
                    getattr(ax, f"{axis}axis").set_major_locator(FixedLocator(symlog_ticks(linthresh, largest)))
            ax.axhline(0, color="grey", linewidth=0.5)
            ax.axvline(0, color="grey", linewidth=0.5)
            ax.set_title(f"{model}: {title}", fontsize=9)
            ax.set_xlabel("raw estimate of the entropy change")
            ax.set_ylabel("measured one-step entropy change")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------------------------------
# The runner (called by run_table.py through repro_analyses)
# --------------------------------------------------------------------------------------------------
def _slug(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model)


def _models(config) -> List[str]:
    return list(dict.fromkeys(str(r["model"]) for r in config.analysis_rows))


def selected_models(config, rows_arg: str) -> List[str]:
    """The models named by ``--rows`` (model ids, comma-separated), in table order; all when empty."""
    models = _models(config)
    wanted = [m.strip() for m in (rows_arg or "").split(",") if m.strip()]
    unknown = [m for m in wanted if m not in models]
    if unknown:
        raise ValueError(f"--rows: {unknown} are not models of {config.table}; choose from {models}")
    return [m for m in models if not wanted or m in wanted]


def smoke_setup(args, out: Path):
    import repro_smoke
    import run_table as rt

    smoke = repro_smoke.SmokeSetup(out / "smoke", data_dir=Path(args.data_dir or rt.default_data_dir()))
    smoke.source_file()
    return smoke


def prepare_prompts(config, args, out: Path, smoke) -> Path:
    """DAPO-Math-17k through reproduce/prepare_data.py (its ``main``, in this process), as the training tables do."""
    import prepare_data
    import repro_pipeline as pipeline

    data = config.values("data")
    if args.train_data:
        data["source"] = args.train_data
    if smoke:
        data = smoke.data_request(data)
    path = out / "data" / "dapo17k.jsonl"
    cmd = pipeline.prepare_data_command(data, path) + (["--limit", str(smoke.train_prompts)] if smoke else [])
    print(f"[data] {pipeline.shell_join(cmd)}")
    if not args.dry_run and prepare_data.main(cmd[2:]) != 0:
        raise RuntimeError(f"[data] prepare_data failed for {path}")
    return path


def run(config, args) -> int:
    spec = EstimatorSpec.from_config(config)
    if args.smoke:
        spec = spec.smoke()
    out = Path(args.output_dir or Path("runs") / "reproduce" / config.table).resolve()
    models = selected_models(config, args.rows)
    if args.dry_run:
        prepare_prompts(config, args, out, None)
        for model in models:
            gb = memory_estimate_gb(model)
            need = f"~{gb} GB for weights, gradients and AdamW in fp32, plus activations" if gb else "memory unknown"
            print(
                f"[estimator] {model}: {spec.steps} GRPO steps x {spec.prompts_per_step} prompts x "
                f"{spec.samples_per_prompt} samples, {spec.prompts_per_step // spec.mini_batch_prompts} optimizer "
                f"steps per rollout step, lr {spec.lr:g}, {spec.dtype}; {need} -> "
                f"{out / 'models' / _slug(model) / 'tokens.npz'}"
            )
        print(f"[table] {out / (config.table + '.md')}, .json and .png (MSE / PCC / SRCC, ours / paper)")
        return 0
    smoke = smoke_setup(args, out) if args.smoke else None
    data_path = prepare_prompts(config, args, out, smoke)
    reward_fn = load_reward(config.values("recipe"))
    for model in models:
        model_dir = out / "models" / _slug(model)
        done = model_dir / "done.json"
        if (
            done.is_file()
            and (model_dir / "tokens.npz").is_file()
            and not args.force
            and json.loads(done.read_text()).get("settings") == asdict(spec)
        ):
            print(f"[estimator] {model}: done ({done})")
        else:
            source = str(build_smoke_qwen2(smoke)) if smoke else model
            print(f"[estimator] {model}: measuring with {source}")
            started = time.time()
            policy = load_policy(source, spec)
            prompts = load_prompts(data_path, policy.tok, spec)
            step_log: List[Dict[str, float]] = []
            arrays = measure_model(policy, prompts, reward_fn, spec, progress=not args.quiet, step_log=step_log)
            del policy
            with atomic_path(model_dir / "tokens.npz", suffix=".npz") as tmp:
                np.savez(tmp, **arrays)
            # the GRPO run's logged metrics per rollout step (loss, clip fractions, entropy), as the demo logs them
            atomic_write_text(model_dir / "train_metrics.jsonl", "".join(json.dumps(row) + "\n" for row in step_log))
            atomic_write_text(
                done,
                json.dumps(
                    {
                        "model": model,
                        "loaded_from": source,
                        "settings": asdict(spec),
                        "tokens": int(arrays["delta_entropy"].size),
                        "seconds": round(time.time() - started, 1),
                        "smoke": bool(args.smoke),
                    },
                    indent=2,
                )
                + "\n",
            )
    tokens: Dict[str, Dict[str, np.ndarray]] = {}
    for model in _models(config):  # every measured model, also those of earlier --rows runs with these settings
        model_dir = out / "models" / _slug(model)
        if (model_dir / "done.json").is_file() and json.loads((model_dir / "done.json").read_text()).get(
            "settings"
        ) == asdict(spec):
            with np.load(model_dir / "tokens.npz") as npz:
                tokens[model] = {k: npz[k] for k in npz.files}
    table = build_table(config, tokens, spec)
    table["smoke"] = bool(args.smoke)
    atomic_write_text(out / f"{config.table}.json", json.dumps(table, indent=2, allow_nan=True) + "\n")
    atomic_write_text(out / f"{config.table}.md", markdown(table, bool(args.smoke)))
    if tokens:
        plot(tokens, table, out / f"{config.table}.png")
    print(f"[table] wrote {out / (config.table + '.md')}, .json and .png")
    return 0
