#!/usr/bin/env python
"""Peak memory and time of the chunked log-prob + entropy pass vs the naive full log_softmax.

    python benchmarks/entropy_pass.py                      # V = 152064 (Qwen), 8192 tokens, bf16 logits
    python benchmarks/entropy_pass.py --tokens 2048 --chunk-rows 256 --repeats 5

Variants (each in its own subprocess):
  naive            log_softmax(logits, dtype=float32) over the full [N, V], gather, and
                   entropy = -(exp(lsm) * lsm).sum(-1) (multiplied in place: a lean naive baseline)
  chunked_fused    openrlhf_steer.core.entropy.token_logprobs_and_entropy(with_entropy=True)
  chunked_logprob  the same pass with with_entropy=False (log-prob alone)

Peak memory: tracemalloc does not see torch's CPU allocator, so every variant runs in a fresh
subprocess that builds the logits (in chunks, so creating them leaves no larger peak behind), reads
``ru_maxrss`` (the process's peak resident set), runs the variant, and reads ``ru_maxrss`` again; the
difference is the variant's peak extra memory. Time: best of ``--repeats`` runs; the fused vs
log-prob-alone ratio comes from one extra process that alternates the two (so a shared machine's
load drifts hit both alike) and compares CPU time (``time.process_time``, all threads), which other
processes competing for the cores do not inflate; the wall-time ratio is reported next to it.
Targets (from the issue): naive / chunked peak memory >= 8x; fused / log-prob-alone time <= 1.3x.
Results: ``<output-dir>/entropy_pass.json`` and ``.md`` (written atomically).
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

from openrlhf_steer_eval.atomic_io import atomic_write_text

VARIANTS = ("naive", "chunked_fused", "chunked_logprob")
TIMING = "interleaved_timing"
MEMORY_TARGET = 8.0
TIME_TARGET = 1.3


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab", type=int, default=152064, help="vocabulary size V (default 152064, Qwen2.5)")
    parser.add_argument("--tokens", type=int, default=8192, help="number of token rows N = B*T (default 8192)")
    parser.add_argument("--chunk-rows", type=int, default=512, help="rows per chunk of the chunked pass (default 512)")
    parser.add_argument(
        "--dtype",
        choices=("bfloat16", "float16", "float32"),
        default="bfloat16",
        help="dtype of the logits as the model returns them (default bfloat16)",
    )
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1.0)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per variant; the best is kept (default 3)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list from {VARIANTS}")
    parser.add_argument(
        "--output-dir", default="runs/bench", help="where entropy_pass.json/.md go (default runs/bench)"
    )
    parser.add_argument("--fresh", action="store_true", help="ignore variants finished by an interrupted earlier run")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when a target is missed")
    parser.add_argument("--worker", choices=VARIANTS + (TIMING,), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.vocab < 2 or args.tokens < 1 or args.chunk_rows < 1 or args.repeats < 1 or args.temperature <= 0:
        parser.error(
            "--vocab >= 2, --tokens >= 1, --chunk-rows >= 1, --repeats >= 1 and --temperature > 0 are required"
        )
    unknown = set(args.variants.split(",")) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown --variants {sorted(unknown)}; choose from {VARIANTS}")
    return args


# --------------------------------------------------------------------------------------------------
# Worker: one variant in a fresh process
# --------------------------------------------------------------------------------------------------
def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _make_logits(args, torch):
    dtype = getattr(torch, args.dtype)
    gen = torch.Generator().manual_seed(args.seed)
    logits = torch.empty(args.tokens, args.vocab, dtype=dtype)
    # One small random block, rolled by a different offset per chunk: distinct rows, cheap to build,
    # and no large float32 temporary that would raise ru_maxrss before the baseline is read.
    step = min(16, args.tokens)  # temporaries of ~10 MB: they must not set the baseline peak
    block = (torch.randn(step, args.vocab, generator=gen) * 2.0).to(dtype)
    for i, start in enumerate(range(0, args.tokens, step)):
        stop = min(start + step, args.tokens)
        logits[start:stop] = block[: stop - start].roll(shifts=(i * 7919) % args.vocab, dims=-1)
    del block
    labels = torch.randint(0, args.vocab, (args.tokens,), generator=gen)
    return logits.view(1, args.tokens, args.vocab), labels.view(1, args.tokens)


def _run_variant(name, logits, labels, args, torch):
    if name == "naive":
        z = logits if args.temperature == 1.0 else logits.float() / args.temperature
        lsm = torch.log_softmax(z, dim=-1, dtype=torch.float32)
        log_probs = lsm.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
        entropy = -(lsm.exp().mul_(lsm)).sum(-1)
        del lsm, z
        return log_probs, entropy
    from openrlhf_steer.core.entropy import token_logprobs_and_entropy

    return token_logprobs_and_entropy(
        logits, labels, temperature=args.temperature, chunk_rows=args.chunk_rows, with_entropy=(name == "chunked_fused")
    )


def timing_worker(args) -> dict:
    """fused and log-prob-alone alternately in one process, best of N each, wall and CPU time.

    Alternating cancels slow drifts of a shared machine's load; CPU time (all threads of this
    process, ``time.process_time``) is not inflated by other processes waiting for the cores.
    """
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    best = {name: {"wall": float("inf"), "cpu": float("inf")} for name in ("chunked_fused", "chunked_logprob")}
    with torch.no_grad():
        logits, labels = _make_logits(args, torch)
        _run_variant("chunked_logprob", logits, labels, args, torch)  # warm-up (first-touch, imports)
        for _ in range(args.repeats):
            for name in best:
                wall, cpu = time.perf_counter(), time.process_time()
                _run_variant(name, logits, labels, args, torch)
                best[name]["wall"] = min(best[name]["wall"], time.perf_counter() - wall)
                best[name]["cpu"] = min(best[name]["cpu"], time.process_time() - cpu)
    return {"variant": TIMING, "best": best, "threads": torch.get_num_threads()}


def worker(args) -> dict:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    with torch.no_grad():
        logits, labels = _make_logits(args, torch)
        baseline = _peak_rss_bytes()
        times = []
        result = None
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = _run_variant(args.worker, logits, labels, args, torch)
            times.append(time.perf_counter() - start)
        peak = _peak_rss_bytes()
        log_probs, entropy = result
    return {
        "variant": args.worker,
        "peak_extra_bytes": max(peak - baseline, 0),
        "logits_bytes": logits.numel() * logits.element_size(),
        "best_seconds": min(times),
        "all_seconds": times,
        "mean_log_prob": float(log_probs.double().mean()),
        "mean_entropy": None if entropy is None else float(entropy.double().mean()),
        "threads": torch.get_num_threads(),
    }


# --------------------------------------------------------------------------------------------------
# Parent: run the workers, compare, write JSON + Markdown
# --------------------------------------------------------------------------------------------------
def _spawn(variant: str, argv) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), *argv, "--worker", variant]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        hint = " (killed: out of memory? try fewer --tokens)" if proc.returncode < 0 else ""
        raise SystemExit(f"variant {variant} failed with code {proc.returncode}{hint}:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.3f} GiB"


def summarise(results: dict, args) -> dict:
    summary = {
        "config": {
            k: getattr(args, k) for k in ("vocab", "tokens", "chunk_rows", "dtype", "temperature", "repeats", "seed")
        },
        "results": results,
        "checks": {},
    }
    if "naive" in results and "chunked_fused" in results:
        naive, fused = results["naive"], results["chunked_fused"]
        ratio = naive["peak_extra_bytes"] / max(fused["peak_extra_bytes"], 1)
        summary["checks"]["memory_ratio_naive_over_chunked"] = {
            "value": ratio,
            "target": f">= {MEMORY_TARGET}",
            "pass": ratio >= MEMORY_TARGET,
        }
        summary["checks"]["agreement"] = {
            "mean_log_prob_abs_diff": abs(naive["mean_log_prob"] - fused["mean_log_prob"]),
            "mean_entropy_abs_diff": abs(naive["mean_entropy"] - fused["mean_entropy"]),
        }
        summary["checks"]["time_ratio_naive_over_chunked_fused"] = {
            "value": naive["best_seconds"] / fused["best_seconds"]
        }
    if TIMING in results:
        best = results[TIMING]["best"]
        cpu = best["chunked_fused"]["cpu"] / best["chunked_logprob"]["cpu"]
        wall = best["chunked_fused"]["wall"] / best["chunked_logprob"]["wall"]
        summary["checks"]["time_ratio_fused_over_logprob"] = {
            "value": cpu,
            "target": f"<= {TIME_TARGET}",
            "pass": cpu <= TIME_TARGET,
            "measure": "CPU time, interleaved, best of repeats",
        }
        summary["checks"]["time_ratio_fused_over_logprob_wall"] = {
            "value": wall,
            "measure": "wall time, interleaved, best of repeats",
        }
    return summary


def to_markdown(summary: dict) -> str:
    cfg = summary["config"]
    lines = [
        "# Chunked log-prob + entropy pass",
        "",
        f"V = {cfg['vocab']}, N = {cfg['tokens']} tokens, logits {cfg['dtype']}, chunk_rows = {cfg['chunk_rows']}, "
        f"temperature {cfg['temperature']}, best of {cfg['repeats']}.",
        "",
        "| variant | peak extra memory | best time (s) | mean log p | mean H |",
        "|---|---|---|---|---|",
    ]
    for name, r in summary["results"].items():
        if name == TIMING:
            continue
        ent = "-" if r["mean_entropy"] is None else f"{r['mean_entropy']:.5f}"
        lines.append(
            f"| {name} | {_gib(r['peak_extra_bytes'])} | {r['best_seconds']:.3f} | {r['mean_log_prob']:.5f} | {ent} |"
        )
    if TIMING in summary["results"]:
        best = summary["results"][TIMING]["best"]
        lines += [
            "",
            "Interleaved timing (fused and log-prob alone alternated in one process, best of repeats):",
            "",
            "| variant | wall (s) | CPU (s) |",
            "|---|---|---|",
        ]
        lines += [f"| {name} | {b['wall']:.3f} | {b['cpu']:.3f} |" for name, b in best.items()]
    lines += ["", "| check | value | target | result |", "|---|---|---|---|"]
    for name, c in summary["checks"].items():
        if "value" in c:
            verdict = "" if "pass" not in c else ("PASS" if c["pass"] else "FAIL")
            lines.append(f"| {name} | {c['value']:.3f} | {c.get('target', '')} | {verdict} |")
        else:
            lines.append(f"| {name} | {json.dumps(c)} | | |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(timing_worker(args) if args.worker == TIMING else worker(args)))
        return 0
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = lambda x, **_: x
    out = Path(args.output_dir)
    partial_path = out / "entropy_pass.partial.json"
    config = summarise({}, args)["config"]
    results = {}
    if partial_path.exists() and not args.fresh:
        saved = json.loads(partial_path.read_text())
        if saved.get("config") == config:
            results = saved["results"]
            print(f"resuming: reusing finished variants {sorted(results)} from {partial_path} (--fresh to redo)")
    jobs = args.variants.split(",")
    if "chunked_fused" in jobs and "chunked_logprob" in jobs:
        jobs.append(TIMING)
    for variant in tqdm(jobs, desc="variants"):
        if variant not in results:
            results[variant] = _spawn(variant, argv)
            atomic_write_text(partial_path, json.dumps({"config": config, "results": results}, indent=2) + "\n")
    summary = summarise(results, args)
    atomic_write_text(out / "entropy_pass.json", json.dumps(summary, indent=2) + "\n")
    markdown = to_markdown(summary)
    atomic_write_text(out / "entropy_pass.md", markdown)
    partial_path.unlink(missing_ok=True)
    print(markdown)
    failed = [k for k, c in summary["checks"].items() if c.get("pass") is False]
    print("PASS" if not failed else f"FAIL: {', '.join(failed)}")
    return 1 if (failed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
