#!/usr/bin/env python
"""Math grading throughput: the process-pool grader vs one process, on real-style responses.

    python benchmarks/math_grader_throughput.py                       # 2,000 responses, Math-Verify, 2 workers
    python benchmarks/math_grader_throughput.py --grader qwen --workers 2 --repeat 2

Responses: every MATH-500 reference solution (worked LaTeX solutions ending in ``\\boxed{...}``) in
four variants: as written (correct), boxed answer replaced by a wrong one, boxed answer rewritten as
"The answer is X." (no box), and cut off before the final answer (no answer). 500 x 4 = 2,000 pairs,
``--repeat`` multiplies them. Data: ``--data`` (default $OPENRLHF_STEER_DATA or ../shared/data next
to the checkout)/math500/test.jsonl.

Measured: single process = ``grade_answer`` in a loop in this process (after a warm-up); pool =
``MathGraderPool(workers).grade_many`` with workers already started (their start-up time is reported
separately). Verdicts of both must be identical. Target (issue #6): pool / single >= 1.8x on 2 cores
with no hung workers (``restarts`` = workers killed for exceeding the per-sample timeout).
Results: ``<output-dir>/math_grader_throughput.json`` and ``.md`` (written atomically).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

TARGET = 1.8


def parse_args(argv=None) -> argparse.Namespace:
    here = Path(__file__).resolve().parent.parent
    default_data = Path(os.environ.get("OPENRLHF_STEER_DATA", here.parent / "shared" / "data"))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=default_data, help="folder holding math500/test.jsonl")
    p.add_argument("--grader", default="math_verify", choices=("math_verify", "qwen"))
    p.add_argument("--workers", type=int, default=2, help="pool worker processes (default 2)")
    p.add_argument("--timeout", type=float, default=10.0, help="per-sample outer timeout in seconds")
    p.add_argument("--repeat", type=int, default=1, help="multiply the 2,000 pairs (default 1)")
    p.add_argument("--output-dir", type=Path, default=Path("runs/bench"), help="where the JSON/MD results go")
    return p.parse_args(argv)


def build_pairs(data: Path, repeat: int):
    from openrlhf_steer_eval.graders.math_text import last_boxed_content

    path = data / "math500" / "test.jsonl"
    if not path.is_file():
        sys.exit(f"error: {path} not found; pass --data DIR (the folder with math500/test.jsonl)")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    pairs = []
    for r in rows:
        sol, gold = r["solution"], r["answer"]
        at = sol.rfind("\\boxed")
        boxed = last_boxed_content(sol[at:]) if at >= 0 else None
        if boxed is None:
            continue
        box = "\\boxed{" + boxed + "}"
        pairs.append((sol, gold))  # correct
        pairs.append((sol.replace(box, "\\boxed{" + boxed + "+1}"), gold))  # wrong answer
        pairs.append((sol.replace(box, boxed) + "\nThe answer is " + boxed + ".", gold))  # no box
        pairs.append((sol[:at], gold))  # truncated: no final answer
    return pairs * repeat


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a live process from /proc (Linux); NaN elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def runqueue_wait_seconds(pid: int) -> float:
    """Time the process spent runnable but waiting for a CPU (/proc/<pid>/schedstat, Linux); NaN elsewhere.
    Large values mean other processes took the cores; small values with a low CPU share mean the
    process was idle (e.g. starved of work by the pool)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return float("nan")


def main(argv=None) -> int:
    args = parse_args(argv)
    from openrlhf_steer_eval.graders.math import MathGraderPool, grade_answer
    from openrlhf_steer_eval.io_utils import atomic_write_json, atomic_write_text

    pairs = build_pairs(args.data, args.repeat)
    print(f"{len(pairs)} responses, grader={args.grader}, workers={args.workers}, cpus={os.cpu_count()}, "
          f"load average before: {os.getloadavg()[0]:.2f}", flush=True)

    for r, g in pairs[:4]:  # warm-up: sympy/antlr caches, as the pool workers do before "ready"
        grade_answer(r, g, args.grader)
    q0 = runqueue_wait_seconds(os.getpid())
    t0, c0 = time.perf_counter(), time.process_time()
    single = [grade_answer(r, g, args.grader) for r, g in pairs]
    single_s, single_cpu = time.perf_counter() - t0, time.process_time() - c0
    single_wait = runqueue_wait_seconds(os.getpid()) - q0

    t0 = time.perf_counter()
    pool = MathGraderPool(workers=args.workers, timeout=args.timeout).start()
    startup_s = time.perf_counter() - t0
    try:
        pids = [w.process.pid for w in pool._pool]
        w0 = sum(process_cpu_seconds(p) for p in pids)
        q0 = sum(runqueue_wait_seconds(p) for p in pids)
        t0, c0 = time.perf_counter(), time.process_time()
        pooled = pool.grade_many(pairs, grader=args.grader, progress="pool")
        pool_s, parent_cpu = time.perf_counter() - t0, time.process_time() - c0
        worker_cpu = sum(process_cpu_seconds(p) for p in pids) - w0
        worker_wait = sum(runqueue_wait_seconds(p) for p in pids) - q0
        restarts = pool.restarts
    finally:
        pool.close()

    same = [a.correct for a in single] == [b.correct for b in pooled]
    ratio = single_s / pool_s
    result = {
        "responses": len(pairs), "grader": args.grader, "workers": args.workers, "cpus": os.cpu_count(),
        "single_seconds": round(single_s, 3), "pool_seconds": round(pool_s, 3),
        "pool_startup_seconds": round(startup_s, 3),
        "single_samples_per_s": round(len(pairs) / single_s, 1), "pool_samples_per_s": round(len(pairs) / pool_s, 1),
        "speedup": round(ratio, 3),
        "speedup_including_startup": round(single_s / (pool_s + startup_s), 3),
        "target": TARGET, "meets_target": ratio >= TARGET, "restarts": restarts, "verdicts_identical": same,
        "correct_single": sum(v.correct for v in single), "load_average_after": round(os.getloadavg()[0], 2),
        # CPU accounting, to read the wall-clock ratio on a shared machine: if the workers' CPU time equals
        # the single process's, the pool adds no work and any shortfall is cores taken by other processes
        "single_cpu_seconds": round(single_cpu, 3), "pool_worker_cpu_seconds": round(worker_cpu, 3),
        "pool_parent_cpu_seconds": round(parent_cpu, 3),
        "pool_cpu_overhead": round((worker_cpu + parent_cpu) / single_cpu, 3),
        "cpu_share_single": round(single_cpu / single_s, 3),
        "cpu_share_pool": round(worker_cpu / pool_s, 3),
        "single_runqueue_wait_seconds": round(single_wait, 3),
        "pool_workers_runqueue_wait_seconds": round(worker_wait, 3),
        # worker time neither computing nor waiting for a CPU = waiting for work from the pool
        "pool_workers_idle_seconds": round(args.workers * pool_s - worker_cpu - worker_wait, 3),
    }
    print(json.dumps(result, indent=2))
    print(f"speedup pool/single = {ratio:.2f}x (target >= {TARGET}x), restarts = {restarts}, identical = {same}")
    args.output_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.output_dir / "math_grader_throughput.json", result)
    md = ["# Math grader throughput", "", "| metric | value |", "|---|---|"]
    md += [f"| {k} | {v} |" for k, v in result.items()]
    atomic_write_text(args.output_dir / "math_grader_throughput.md", "\n".join(md) + "\n")
    return 0 if same and restarts == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
