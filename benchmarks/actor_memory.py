#!/usr/bin/env python
"""Peak memory and time of the policy actor's forward (+ backward) with entropy: OpenRLHF vs chunked.

    python benchmarks/actor_memory.py                  # 1-layer Qwen2, V = 152064, 2 x 2048 tokens, 1:3 split
    python benchmarks/actor_memory.py --batch 1 --seqlen 512 --vocab 32000 --repeats 1   # quick look

Variants (same model, same inputs, each mode of each variant in its own subprocess):
  stock          OpenRLHF 0.11.2 ``Actor.forward(..., return_output=True, return_entropy=True)`` as installed:
                 full [B, T, V] float32 logits, ``compute_entropy`` and ``log_probs_from_logits`` on them
  entropy_patch  the same forward with only ``compute_entropy`` replaced by our chunked entropy (the
                 earlier integration; optional, ``--variants stock,entropy_patch,chunked``)
  chunked        ``openrlhf_steer.integration.chunked_actor``: lm_head + log-prob + entropy in row chunks
                 over the response positions only, each chunk recomputed in backward
Modes: ``forward`` (no grad, the rollout's old-log-prob pass) and ``forward_backward`` (a training
step's loss = weighted log-probs + 0.01 * entropy, then ``backward``).

Peak memory: every worker builds the model and inputs, reads ``ru_maxrss`` (peak resident set), runs the
mode ``--repeats`` times and reads it again; the difference is the mode's peak extra memory (torch's CPU
allocator is invisible to tracemalloc). Time: best of the repeats, wall and CPU (``time.process_time``);
the ratio uses CPU time, which other processes competing for the cores do not inflate (one torch thread
by default, so no thread waits on a busy machine either). Targets (issue 15): forward + backward peak
ratio stock / chunked >= 8, time ratio chunked / stock <= 1.15. The last line printed is
``actor_memory: peak_ratio=<stock/chunked> time_ratio=<chunked/stock>`` (forward + backward).
Results: ``<output-dir>/actor_memory.json`` and ``.md``. At the default size the stock forward + backward
worker peaks at about 16.3 GiB (7 float32 copies of the logits); the parent warns when less is available.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

VARIANTS = ("stock", "entropy_patch", "chunked")
MODES = ("forward", "forward_backward")
PEAK_TARGET = 8.0
TIME_TARGET = 1.15
ENTROPY_COEF = 0.01


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab", type=int, default=152064, help="vocabulary size V (default 152064, Qwen2.5)")
    parser.add_argument("--hidden", type=int, default=64, help="hidden size of the 1-layer Qwen2 (default 64)")
    parser.add_argument("--batch", type=int, default=2, help="sequences per micro-batch (default 2)")
    parser.add_argument("--seqlen", type=int, default=2048, help="tokens per sequence (default 2048)")
    parser.add_argument(
        "--prompt-fraction",
        type=float,
        default=0.25,
        help="share of each sequence that is prompt (default 0.25: a 1:3 prompt:response split)",
    )
    parser.add_argument("--chunk-rows", type=int, default=512, help="rows per chunk of the chunked path (default 512)")
    parser.add_argument("--temperature", type=float, default=1.0, help="rollout temperature (default 1.0)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per worker; the best time is kept (default 2)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads per worker (default 1; 0 = torch default)"
    )
    parser.add_argument(
        "--variants", default="stock,chunked", help=f"comma list from {VARIANTS} (default stock,chunked)"
    )
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma list from {MODES}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--output-dir", default="runs/bench", help="where actor_memory.json/.md go (default runs/bench)"
    )
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when a target is missed")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # "<variant>:<mode>"
    args = parser.parse_args(argv)
    if (
        min(args.vocab, args.hidden, args.batch, args.chunk_rows, args.repeats) < 1
        or args.seqlen < 4
        or not 0 < args.prompt_fraction < 1
        or args.temperature <= 0
    ):
        parser.error("sizes must be >= 1 (--seqlen >= 4), 0 < --prompt-fraction < 1 and --temperature > 0")
    for flag, given, allowed in (("--variants", args.variants, VARIANTS), ("--modes", args.modes, MODES)):
        unknown = set(given.split(",")) - set(allowed)
        if unknown:
            parser.error(f"unknown {flag} {sorted(unknown)}; choose from {allowed}")
    return args


# --------------------------------------------------------------------------------------------------
# Worker: one (variant, mode) in a fresh process
# --------------------------------------------------------------------------------------------------
def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def build_actor(args, variant: str):
    """OpenRLHF ``Actor`` around a random 1-layer float32 Qwen2; the variant's patch applied."""
    import torch
    from openrlhf.models import Actor
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(args.seed)
    heads = max(1, args.hidden // 32)
    config = Qwen2Config(
        vocab_size=args.vocab,
        hidden_size=args.hidden,
        intermediate_size=2 * args.hidden,
        num_hidden_layers=1,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max(args.seqlen, 64),
        tie_word_embeddings=False,
        attn_implementation="sdpa",
    )
    model = Qwen2ForCausalLM(config).float()
    actor = Actor(model, temperature=args.temperature)
    actor.packing_samples = False  # Actor() around a module skips the attribute
    if variant == "entropy_patch":
        from openrlhf_steer.integration import entropy_patch

        entropy_patch.SETTINGS.update(entropy_grad=True, chunk_rows=args.chunk_rows)
        entropy_patch.install()
    elif variant == "chunked":
        from openrlhf_steer.integration import chunked_actor

        chunked_actor.install(actor, chunk_rows=args.chunk_rows, entropy_grad=True, strict=True)
    return actor


def make_inputs(args):
    """Sequences [B, T], all attended, and the action mask [B, T-1] of the response (last 3/4) tokens."""
    import torch

    gen = torch.Generator().manual_seed(args.seed + 1)
    sequences = torch.randint(0, args.vocab, (args.batch, args.seqlen), generator=gen)
    attention_mask = torch.ones(args.batch, args.seqlen, dtype=torch.long)
    prompt = max(1, round(args.seqlen * args.prompt_fraction))
    action_mask = torch.zeros(args.batch, args.seqlen - 1, dtype=torch.bool)
    action_mask[:, prompt - 1 :] = True  # tokens prompt..T-1 are the response
    return sequences, attention_mask, action_mask


def run_once(actor, inputs, mode: str, torch):
    sequences, attention_mask, action_mask = inputs
    if mode == "forward":
        with torch.no_grad():
            log_probs, output = actor(
                sequences, action_mask, attention_mask=attention_mask, return_output=True, return_entropy=True
            )
    else:
        actor.model.zero_grad(set_to_none=True)
        log_probs, output = actor(
            sequences, action_mask, attention_mask=attention_mask, return_output=True, return_entropy=True
        )
        weights = torch.linspace(-1.0, 1.0, log_probs.numel()).view_as(log_probs)
        entropy = output.entropy[:, -action_mask.shape[1] :]
        n_actions = action_mask.sum()
        loss = ((log_probs * weights).sum() + ENTROPY_COEF * (entropy * action_mask).sum()) / n_actions
        loss.backward()
    entropy = output.entropy[:, -action_mask.shape[1] :]
    n = float(action_mask.sum())
    return float((log_probs.detach() * action_mask).sum()) / n, float((entropy.detach() * action_mask).sum()) / n


def _cpu_import_stubs() -> None:
    """OpenRLHF imports flash_attn at module level; on a CPU install use the test suite's stubs of it."""
    import importlib.util

    stubs = Path(__file__).resolve().parent.parent / "tests" / "support" / "stubs"
    if importlib.util.find_spec("flash_attn") is None or importlib.util.find_spec("vllm") is None:
        sys.path.append(str(stubs))


def worker(args) -> dict:
    _cpu_import_stubs()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    variant, mode = args.worker.split(":")
    actor = build_actor(args, variant)
    actor.train()
    inputs = make_inputs(args)
    baseline = _peak_rss_bytes()
    walls, cpus, means = [], [], None
    for _ in range(args.repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        means = run_once(actor, inputs, mode, torch)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    grad_norm = None
    if mode == "forward_backward":
        grad_norm = float(
            torch.sqrt(sum((p.grad.double() ** 2).sum() for p in actor.model.parameters() if p.grad is not None))
        )
    return {
        "variant": variant,
        "mode": mode,
        "peak_extra_bytes": max(_peak_rss_bytes() - baseline, 0),
        "best_wall": min(walls),
        "best_cpu": min(cpus),
        "all_wall": walls,
        "all_cpu": cpus,
        "mean_log_prob": means[0],
        "mean_entropy": means[1],
        "grad_norm": grad_norm,
        "threads": torch.get_num_threads(),
    }


# --------------------------------------------------------------------------------------------------
# Parent
# --------------------------------------------------------------------------------------------------
def _spawn(job: str, argv) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), *argv, "--worker", job]
    env = dict(os.environ, TORCHDYNAMO_DISABLE="1")  # OpenRLHF's compute_entropy is @torch.compile
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        hint = " (killed: out of memory? try a smaller --seqlen)" if proc.returncode < 0 else ""
        raise SystemExit(f"worker {job} failed with code {proc.returncode}{hint}:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.3f} GiB"


def summarise(results: dict, args) -> dict:
    config = {
        k: getattr(args, k)
        for k in (
            "vocab",
            "hidden",
            "batch",
            "seqlen",
            "prompt_fraction",
            "chunk_rows",
            "temperature",
            "repeats",
            "threads",
            "seed",
        )
    }
    config["tokens"] = args.batch * args.seqlen
    checks = {}
    for mode in MODES:
        stock, ours = results.get(f"stock:{mode}"), results.get(f"chunked:{mode}")
        if not (stock and ours):
            continue
        peak = stock["peak_extra_bytes"] / max(ours["peak_extra_bytes"], 1)
        cpu = ours["best_cpu"] / stock["best_cpu"]
        checks[mode] = {
            "peak_ratio": peak,
            "time_ratio": cpu,
            "time_ratio_wall": ours["best_wall"] / stock["best_wall"],
            "mean_log_prob_abs_diff": abs(stock["mean_log_prob"] - ours["mean_log_prob"]),
            "mean_entropy_abs_diff": abs(stock["mean_entropy"] - ours["mean_entropy"]),
        }
        if mode == "forward_backward":
            checks[mode].update(
                peak_pass=peak >= PEAK_TARGET,
                time_pass=cpu <= TIME_TARGET,
                grad_norm_rel_diff=abs(stock["grad_norm"] - ours["grad_norm"]) / stock["grad_norm"],
            )
    return {
        "config": config,
        "results": results,
        "checks": checks,
        "load_average": os.getloadavg(),
        "cpu_count": os.cpu_count(),
    }


def to_markdown(summary: dict) -> str:
    cfg = summary["config"]
    lines = [
        "# Policy actor forward (+ backward) with entropy: OpenRLHF vs chunked",
        "",
        f"1-layer Qwen2 (hidden {cfg['hidden']}, float32), V = {cfg['vocab']}, {cfg['batch']} x {cfg['seqlen']} = "
        f"{cfg['tokens']} tokens, prompt share {cfg['prompt_fraction']}, chunk_rows = {cfg['chunk_rows']}, "
        f"temperature {cfg['temperature']}, {cfg['threads'] or 'default'} thread(s), best of {cfg['repeats']}. "
        f"Load average while measuring: {', '.join(f'{x:.2f}' for x in summary['load_average'])} "
        f"on {summary['cpu_count']} CPUs.",
        "",
        "| variant | mode | peak extra memory | best wall (s) | best CPU (s) | mean log p | mean H |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in summary["results"].values():
        lines.append(
            f"| {r['variant']} | {r['mode']} | {_gib(r['peak_extra_bytes'])} | {r['best_wall']:.2f} | "
            f"{r['best_cpu']:.2f} | {r['mean_log_prob']:.5f} | {r['mean_entropy']:.5f} |"
        )
    lines += [
        "",
        "| mode | peak ratio stock/chunked | CPU-time ratio chunked/stock | wall-time ratio | target |",
        "|---|---|---|---|---|",
    ]
    for mode, c in summary["checks"].items():
        target = ""
        if mode == "forward_backward":
            target = (
                f"peak >= {PEAK_TARGET}: {'PASS' if c['peak_pass'] else 'FAIL'}; "
                f"time <= {TIME_TARGET}: {'PASS' if c['time_pass'] else 'FAIL'}"
            )
        lines.append(
            f"| {mode} | {c['peak_ratio']:.2f} | {c['time_ratio']:.3f} | {c['time_ratio_wall']:.3f} | {target} |"
        )
    return "\n".join(lines) + "\n"


def _warn_if_memory_short(args) -> None:
    """OpenRLHF's forward + backward peaks at about 7 float32 copies of the [tokens, V] logits."""
    if "stock" not in args.variants.split(",") or "forward_backward" not in args.modes.split(","):
        return
    need = 7.5 * args.batch * args.seqlen * args.vocab * 4
    try:
        with open("/proc/meminfo") as meminfo:
            fields = dict(line.split(":", 1) for line in meminfo)
        available = int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return
    if available < need:
        print(
            f"warning: the stock forward_backward worker needs about {_gib(need)}, {_gib(available)} is available; "
            f"it may be killed (use a smaller --seqlen)",
            flush=True,
        )


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    from openrlhf_steer_eval.atomic_io import atomic_write_text

    _warn_if_memory_short(args)

    results = {}
    for mode in args.modes.split(","):
        for variant in args.variants.split(","):
            job = f"{variant}:{mode}"
            print(f"running {job} ...", flush=True)
            results[job] = _spawn(job, argv)
    summary = summarise(results, args)
    out = Path(args.output_dir)
    atomic_write_text(out / "actor_memory.json", json.dumps(summary, indent=2) + "\n")
    markdown = to_markdown(summary)
    atomic_write_text(out / "actor_memory.md", markdown)
    print(markdown)
    fb = summary["checks"].get("forward_backward")
    failed = bool(fb) and not (fb["peak_pass"] and fb["time_pass"])
    if fb:
        print(f"actor_memory: peak_ratio={fb['peak_ratio']:.2f} time_ratio={fb['time_ratio']:.3f}")
    else:
        print("actor_memory: peak_ratio=n/a time_ratio=n/a (needs stock and chunked with forward_backward)")
    return 1 if (failed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
