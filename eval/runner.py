"""Orchestrates one evaluation run: load -> (generate with cache | read responses) -> grade -> metrics -> write."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import __version__
from .backends import Backend, BackendConfig, SamplingConfig, make_backend, problem_seed
from .benchmarks import SAMPLING_PRESETS, get_benchmark, make_grader
from .cache import GenerationCache, cache_key
from .graders.base import Benchmark, GraderConfig, PromptOptions, Verdict
from .io_utils import append_jsonl, atomic_write_json, iter_jsonl, read_jsonl_tolerant
from .metrics import correctness_metrics, disagreements
from .outputs import git_commit, package_versions, plot_pass_at_k, write_markdown, write_samples

log = logging.getLogger("openrlhf_steer_eval")
GRADE_CHUNK_RESPONSES = 512  # responses per grade() call; each finished call is cached


@dataclass
class RunConfig:
    benchmarks: List[str]
    output_dir: Path
    backend: Optional[str] = None
    backend_config: BackendConfig = field(default_factory=BackendConfig)
    score_only: Dict[str, Path] = field(default_factory=dict)  # benchmark -> responses JSONL
    sources: Dict[str, str] = field(default_factory=dict)  # benchmark -> HF id or local path
    benchmark_options: Dict[str, Dict[str, str]] = field(default_factory=dict)
    preset: str = "default"
    sampling_overrides: Dict[str, Any] = field(default_factory=dict)  # n, temperature, top_p, max_tokens
    seed: int = 0
    ks: Optional[List[int]] = None
    graders: Optional[List[str]] = None  # None = each benchmark's own list
    grader_config: GraderConfig = field(default_factory=GraderConfig)
    prompt: PromptOptions = field(default_factory=PromptOptions)
    limit: Optional[int] = None

    def to_json(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d["output_dir"] = str(self.output_dir)
        d["score_only"] = {k: str(v) for k, v in self.score_only.items()}
        d["model"] = self.backend_config.model
        return d


def resolve_sampling(bench: Benchmark, preset: str, overrides: Dict[str, Any], seed: int) -> SamplingConfig:
    if preset not in SAMPLING_PRESETS:
        raise ValueError(f"unknown --preset {preset!r}; choose one of {', '.join(SAMPLING_PRESETS)}")
    values = {
        "n": bench.sampling.n,
        "temperature": bench.sampling.temperature,
        "top_p": bench.sampling.top_p,
        "max_tokens": bench.sampling.max_tokens,
    }
    values.update(SAMPLING_PRESETS[preset])
    values.update({k: v for k, v in overrides.items() if v is not None})
    return SamplingConfig(
        n=int(values["n"]),
        temperature=float(values["temperature"]),
        top_p=float(values["top_p"]),
        max_tokens=int(values["max_tokens"]),
        seed=seed,
    ).validate()


def read_score_file(path: Path, ids: Sequence[str]) -> Dict[int, List[str]]:
    """Responses by problem position. ``id`` may be the benchmark's problem id or its 0-based index
    (the id wins when both could match)."""
    by_id = {pid: i for i, pid in enumerate(ids)}
    out: Dict[int, List[str]] = {}
    seen_line: Dict[int, int] = {}
    for lineno, row in iter_jsonl(path):
        if "id" not in row:
            raise ValueError(f"{path}:{lineno}: missing field 'id' (the problem id, or its 0-based line index)")
        raw = row["id"]
        key = str(raw)
        if key in by_id:
            index = by_id[key]
        elif isinstance(raw, int) or (isinstance(raw, str) and raw.isdigit()):
            index = int(raw)
            if not (0 <= index < len(ids)):
                raise ValueError(
                    f"{path}:{lineno}: id {raw!r} is neither a problem id nor a line index "
                    f"(0..{len(ids) - 1}) of this benchmark"
                )
        else:
            raise ValueError(f"{path}:{lineno}: unknown problem id {raw!r} (example ids: {', '.join(ids[:3])})")
        if "responses" in row:
            responses = row["responses"]
        elif "response" in row:
            responses = [row["response"]]
        else:
            raise ValueError(f"{path}:{lineno}: missing field 'responses' (a list of strings)")
        if not isinstance(responses, list) or not responses or not all(isinstance(r, str) for r in responses):
            raise ValueError(f"{path}:{lineno}: field 'responses' must be a non-empty list of strings")
        if index in out:
            raise ValueError(f"{path}:{lineno}: problem {ids[index]!r} already given on line {seen_line[index]}")
        out[index] = responses
        seen_line[index] = lineno
    if not out:
        raise ValueError(f"{path}: no responses found")
    return out


class Runner:
    def __init__(self, config: RunConfig):
        self.config = config
        self.output_dir = Path(config.output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.results_path = self.output_dir / "results.json"  # written once every benchmark is done
        self.partial_path = self.output_dir / "results.partial.json"  # after each benchmark
        self._backend: Optional[Backend] = None
        self._graders: Dict[str, Any] = {}
        self.results: Dict[str, Any] = {
            "harness": {"name": "openrlhf_steer_eval", "version": __version__, "git_commit": git_commit()},
            "config": config.to_json(),
            "versions": package_versions(),
            "metric_keys": "<benchmark>/<grader>/avg@<n> and <benchmark>/<grader>/pass@k:k=<k>&n=<n>",
            "benchmarks": {},
            "metrics": {},
            "stderr": {},
            "disagreements": {},
            "skipped_ks": {},
        }

    # -- pieces
    def backend(self) -> Backend:
        if self._backend is None:
            if not self.config.backend:
                raise ValueError("--backend is required to generate responses (or use --score-only FILE)")
            self._backend = make_backend(self.config.backend, self.config.backend_config)
            self.results["generation_backend"] = self._backend.describe()
        return self._backend

    def load(self, bench: Benchmark) -> Tuple[List[dict], List[str]]:
        options = self.config.benchmark_options.get(bench.name, {})
        unknown = sorted(set(options) - set(bench.options))
        if unknown:
            accepted = ", ".join(sorted(bench.options)) or "none"
            raise ValueError(
                f"--benchmark-option {bench.name}: unknown key(s) {', '.join(unknown)} (accepted: {accepted})"
            )
        problems = bench.load(self.config.sources.get(bench.name), **options)
        if self.config.limit is not None:
            problems = problems[: self.config.limit]
        ids = [bench.problem_id(p, i) for i, p in enumerate(problems)]
        seen: Dict[str, int] = {}
        for i, pid in enumerate(ids):
            if pid in seen:
                raise ValueError(f"{bench.name}: problems #{seen[pid]} and #{i} share the id {pid!r}")
            seen[pid] = i
        return problems, ids

    def generate(
        self, bench: Benchmark, problems: List[dict], ids: List[str], prompts: List[Any], sampling: SamplingConfig
    ) -> Tuple[List[List[str]], Dict[str, Any]]:
        cfg = self.config
        key_config = {
            "benchmark": bench.name,
            "source": cfg.sources.get(bench.name) or bench.default_source,
            "options": cfg.benchmark_options.get(bench.name, {}),
            "backend": cfg.backend,
            "model": cfg.backend_config.model,
            "tokenizer": cfg.backend_config.tokenizer,
            "sampling": dataclasses.asdict(sampling),
            "prompt": dataclasses.asdict(cfg.prompt),
        }
        cache = GenerationCache(self.output_dir, bench.name, key_config)
        cached = cache.load()
        todo = [i for i, pid in enumerate(ids) if pid not in cached]
        info = {"cache_file": str(cache.path.relative_to(self.output_dir)), "cached_problems": len(ids) - len(todo)}
        if todo:
            log.info("%s: generating %d of %d problems (%d cached)", bench.name, len(todo), len(ids), len(cached))
            seeds = [problem_seed(sampling.seed, bench.name, ids[i]) for i in todo]

            def save(start: int, batch: List[List[str]]) -> None:
                rows = []
                for offset, responses in enumerate(batch):
                    i = todo[start + offset]
                    rows.append({"id": ids[i], "index": i, "seed": seeds[start + offset], "responses": responses})
                    cached[ids[i]] = responses
                cache.append(rows)

            t0 = time.perf_counter()
            self.backend().generate([prompts[i] for i in todo], sampling, seeds, progress=save)
            info["generation_seconds"] = round(time.perf_counter() - t0, 3)
        return [cached[pid] for pid in ids], info

    def _grade_with_cache(
        self, bench: str, name: str, grader: Any, problems: List[dict], ids: List[str], responses: List[List[str]]
    ) -> List[List[Verdict]]:
        """Grade in chunks of problems, appending each chunk's verdicts to a cache file, so an interrupted
        grading pass (long code benchmarks) resumes with the problems not graded yet."""
        key = cache_key(
            {
                "benchmark": bench,
                "grader": name,
                "timeout": self.config.grader_config.timeout,
                "options": self.config.grader_config.options,
                "version": __version__,
            }
        )
        path = self.output_dir / "verdicts" / f"{bench}-{name}-{key}.jsonl"
        digests = [hashlib.sha256(json.dumps(rs).encode()).hexdigest()[:20] for rs in responses]
        done: Dict[str, List[Verdict]] = {}
        for row in read_jsonl_tolerant(path):
            try:
                done[f"{row['id']}|{row['digest']}"] = [Verdict.from_dict(v) for v in row["verdicts"]]
            except (KeyError, TypeError, ValueError):
                continue
        out: List[Optional[List[Verdict]]] = [done.get(f"{pid}|{d}") for pid, d in zip(ids, digests)]
        todo = [i for i, v in enumerate(out) if v is None or len(v) != len(responses[i])]
        n = max(1, len(responses[0]) if responses else 1)
        chunk = max(1, GRADE_CHUNK_RESPONSES // n)
        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            result = grader.grade([problems[i] for i in part], [responses[i] for i in part])
            if len(result) != len(part) or any(len(v) != len(responses[i]) for v, i in zip(result, part)):
                raise RuntimeError(f"grader {name!r} returned verdicts of the wrong shape")
            append_jsonl(
                path,
                [
                    {"id": ids[i], "digest": digests[i], "verdicts": [x.to_dict() for x in v]}
                    for i, v in zip(part, result)
                ],
            )
            for i, v in zip(part, result):
                out[i] = v
        return out  # type: ignore[return-value]

    def grade(
        self, bench: Benchmark, problems: List[dict], ids: List[str], responses: List[List[str]]
    ) -> Tuple[Dict[str, List[List[Verdict]]], Dict[str, Any]]:
        names = self.config.graders or bench.graders
        verdicts: Dict[str, List[List[Verdict]]] = {}
        extra: Dict[str, Any] = {}
        for name in names:
            if name not in self._graders:  # built once per run: worker pools start once
                self._graders[name] = make_grader(name, self.config.grader_config)
            grader = self._graders[name]
            t0 = time.perf_counter()
            result = self._grade_with_cache(bench.name, name, grader, problems, ids, responses)
            extra[f"{name}_seconds"] = round(time.perf_counter() - t0, 3)
            verdicts[name] = result
            if hasattr(grader, "extra_metrics"):
                for key, value in grader.extra_metrics(problems, result).items():
                    self.results["metrics"][f"{bench.name}/{name}/{key}"] = float(value)
        return verdicts, extra

    # -- resume of finished benchmarks
    def fingerprint(self, name: str, sampling: SamplingConfig) -> str:
        """Everything that determines a benchmark's results; equal fingerprints -> results reusable."""
        cfg = self.config
        score_file = cfg.score_only.get(name)
        score_stat = None
        if score_file is not None:
            st = Path(score_file).stat()
            score_stat = [str(Path(score_file).resolve()), st.st_size, st.st_mtime_ns]
        source = cfg.sources.get(name)
        source_stat = None
        if source and Path(source).exists():  # a local data file edited since is not "the same settings"
            st = Path(source).stat()
            source_stat = [str(Path(source).resolve()), st.st_size, st.st_mtime_ns]
        return cache_key(
            {
                "benchmark": name,
                "source": source,
                "source_stat": source_stat,
                "limit": cfg.limit,
                "options": cfg.benchmark_options.get(name, {}),
                "backend": cfg.backend,
                "model": cfg.backend_config.model,
                "tokenizer": cfg.backend_config.tokenizer,
                "sampling": dataclasses.asdict(sampling) if score_file is None else None,
                "prompt": dataclasses.asdict(cfg.prompt),
                "score_file": score_stat,
                "ks": cfg.ks,
                "graders": cfg.graders,
                "grader_timeout": cfg.grader_config.timeout,
                "version": __version__,
            }
        )

    def previous_results(self) -> Dict[str, Any]:
        for path in (self.partial_path, self.results_path):
            if path.is_file():
                try:
                    return json.loads(path.read_text())
                except (OSError, json.JSONDecodeError):
                    log.warning("ignoring unreadable %s", path)
        return {}

    def reuse(self, name: str, fingerprint: str, previous: Dict[str, Any]) -> bool:
        info = previous.get("benchmarks", {}).get(name)
        if not info or info.get("fingerprint") != fingerprint:
            return False
        if not (self.output_dir / info.get("samples_file", "")).is_file():
            return False
        prefix = f"{name}/"
        for section in ("metrics", "stderr"):
            self.results[section].update({k: v for k, v in previous.get(section, {}).items() if k.startswith(prefix)})
        for section in ("disagreements", "skipped_ks"):
            if name in previous.get(section, {}):
                self.results[section][name] = previous[section][name]
        self.results["benchmarks"][name] = {**info, "reused_from_previous_run": True}
        log.info("%s: finished in a previous run with the same settings; results reused", name)
        return True

    # -- one benchmark
    def run_benchmark(self, name: str, previous: Optional[Dict[str, Any]] = None) -> None:
        cfg = self.config
        bench = get_benchmark(name)
        sampling = resolve_sampling(bench, cfg.preset, cfg.sampling_overrides, cfg.seed)
        fingerprint = self.fingerprint(name, sampling)
        if previous and self.reuse(name, fingerprint, previous):
            self.save()
            return
        problems, ids = self.load(bench)
        prompts = [bench.prompt(p, cfg.prompt) for p in problems]
        info: Dict[str, Any] = {
            "source": cfg.sources.get(name) or bench.default_source,
            "options": cfg.benchmark_options.get(name, {}),
            "num_problems_in_set": len(problems),
        }
        if name in cfg.score_only:
            by_index = read_score_file(cfg.score_only[name], ids)
            order = sorted(by_index)
            problems, ids, prompts = [problems[i] for i in order], [ids[i] for i in order], [prompts[i] for i in order]
            responses = [by_index[i] for i in order]
            info["mode"] = f"score {cfg.score_only[name]}"
            for pid, rs in zip(ids, responses):
                if len(rs) != len(responses[0]):
                    raise ValueError(
                        f"{cfg.score_only[name]}: problem {pid!r} has {len(rs)} responses but {ids[0]!r} "
                        f"has {len(responses[0])}; every problem needs the same number of responses"
                    )
            info["sampling"] = {"n": len(responses[0]), "note": "responses read from file; decoding settings unknown"}
            if len(order) < info["num_problems_in_set"]:
                log.warning(
                    "%s: the responses file covers %d of %d problems; metrics use those only",
                    name,
                    len(order),
                    info["num_problems_in_set"],
                )
        else:
            responses, gen_info = self.generate(bench, problems, ids, prompts, sampling)
            info.update(gen_info)
            info["mode"] = "generate+score"
            info["sampling"] = {
                **dataclasses.asdict(sampling),
                "preset": cfg.preset,
                "benchmark_default": bench.sampling.as_dict(),
            }
        info["num_problems"] = len(problems)
        info["prompt"] = dataclasses.asdict(cfg.prompt)
        verdicts, timing = self.grade(bench, problems, ids, responses)
        info["grading_seconds"] = timing
        info["graders"] = list(verdicts)
        ks = cfg.ks
        for grader, v in verdicts.items():
            m, se = correctness_metrics(name, grader, [[x.correct for x in row] for row in v], ks)
            self.results["metrics"].update(m)
            self.results["stderr"].update(se)
            n = len(responses[0])
            skipped = [k for k in (ks or []) if k > n]
            if skipped:
                self.results["skipped_ks"][name] = {"n": n, "skipped": skipped, "reason": "pass@k needs k <= n"}
            info.setdefault("grading_timeouts", {})[grader] = sum(
                1 for row in v for x in row if x.detail.get("error") == "timeout"
            )
        names = list(verdicts)
        for other in names[1:]:
            d = disagreements(
                ids,
                [[x.correct for x in r] for r in verdicts[names[0]]],
                [[x.correct for x in r] for r in verdicts[other]],
            )
            self.results["disagreements"].setdefault(name, {})[f"{names[0]} vs {other}"] = d
        samples_path = self.output_dir / f"samples_{name}.jsonl"
        write_samples(samples_path, name, ids, problems, prompts, responses, verdicts)
        info["samples_file"] = samples_path.name
        info["fingerprint"] = fingerprint
        self.results["benchmarks"][name] = info
        self.save()

    def save(self, complete: bool = False) -> None:
        self.results["updated"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.results["complete"] = complete
        if complete:
            try:
                if plot_pass_at_k(self.output_dir / "pass_at_k.png", self.results):
                    self.results["plot"] = "pass_at_k.png"
            except ImportError:  # matplotlib is optional
                log.warning("matplotlib not installed: no pass_at_k.png")
            atomic_write_json(self.results_path, self.results)
            self.partial_path.unlink(missing_ok=True)
        else:
            atomic_write_json(self.partial_path, self.results)
        write_markdown(self.output_dir / "results.md", self.results)

    def close(self) -> None:
        for grader in self._graders.values():
            if hasattr(grader, "close"):
                grader.close()
        self._graders = {}

    def run(self) -> Dict[str, Any]:
        previous = self.previous_results()
        try:
            for name in self.config.benchmarks:
                self.run_benchmark(name, previous)
        finally:
            self.close()
        self.save(complete=True)
        return self.results
