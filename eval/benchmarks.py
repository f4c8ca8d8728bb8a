"""Benchmark and grader registry: the math sets are registered here; code and IF-Eval plug-ins are
imported lazily (see ``graders/base.py`` for the contract and ``PLUGIN_MODULES``).

Default sampling (every value can be overridden on the command line; the values used are recorded
in results.json):
  * AIME 2024/2025, AMC 2023: n=32, temperature 0.6, top-p 0.95. The RLVR convention for small sets
    (research notes eval.md §4: "0.6 / 0.95, n=32 for AIME/AMC"; lighteval moved AIME to n=32 to
    match the literature, anchors.md).
  * MATH-500, Minerva Math, OlympiadBench: n=4, temperature 0.6, top-p 0.95 (same convention; a
    smaller n because the sets are 10-20x larger).
  * max_tokens 4096 for all math sets: the context of Qwen2.5-Math-7B, the base model of the papers'
    math runs, is 4096 tokens (prompt included); raise it for long-CoT models.
  * The STEER paper's evaluation decoding (temperature 1.0, top-p 0.7) is the ``--preset steer``
    sampling preset; it comes from second-hand notes on the paper and is **unverified**.
"""

from __future__ import annotations

import importlib
from typing import Dict, List

from . import data_math
from .graders.base import (
    PLUGIN_BENCHMARKS,
    PLUGIN_MODULES,
    Benchmark,
    Grader,
    GraderConfig,
    PromptOptions,
    SamplingDefaults,
    register_benchmark,
    registered_benchmarks,
    registered_graders,
)
from .prompts import math_prompt

MATH_CONVENTION = "RLVR convention (eval.md §4): T=0.6, top-p=0.95; max_tokens = Qwen2.5-Math-7B context"
SMALL_SET = SamplingDefaults(
    n=32, temperature=0.6, top_p=0.95, max_tokens=4096, source=MATH_CONVENTION + "; n=32 for AIME/AMC"
)
LARGE_SET = SamplingDefaults(
    n=4, temperature=0.6, top_p=0.95, max_tokens=4096, source=MATH_CONVENTION + "; n=4 for the large sets"
)

# Sampling presets selectable with --preset (applied before explicit flags).
SAMPLING_PRESETS: Dict[str, Dict[str, float]] = {
    "default": {},
    "steer": {"temperature": 1.0, "top_p": 0.7},  # STEER paper eval, per second-hand notes: unverified
    "greedy": {"temperature": 0.0, "top_p": 1.0, "n": 1},  # Qwen2.5-Math eval scripts
}


def _math_prompt(row: dict, options: PromptOptions):
    return math_prompt(row[data_math.QUESTION_KEY], options)


def _minerva_loader():
    base = data_math.make_math_loader("minerva_math", data_math.gold_minerva, "math-ai/minervamath")

    def load(source=None, **options):
        # Qwen2.5-Math keeps units when extracting Minerva answers (skip_unit for minerva_math)
        return [{**p, "keep_units": True} for p in base(source, **options)]

    return load


_LOAD_OPTIONS = {
    "split": "dataset split when loading from the Hugging Face hub",
    "config": "dataset configuration name (hub only)",
}

_MATH_SETS = [
    # name, loader, default HF id, id fields, sampling, description
    (
        "aime24",
        data_math.make_math_loader("aime24", data_math.gold_plain, "math-ai/aime24"),
        "math-ai/aime24",
        ("id", "ID"),
        SMALL_SET,
        "AIME 2024, 30 problems; gold = answer",
    ),
    (
        "aime25",
        data_math.make_math_loader("aime25", data_math.gold_plain, "math-ai/aime25"),
        "math-ai/aime25",
        ("id", "ID"),
        SMALL_SET,
        "AIME 2025, 30 problems; gold = answer",
    ),
    (
        "amc23",
        data_math.make_math_loader("amc23", data_math.gold_amc, "math-ai/amc23"),
        "math-ai/amc23",
        ("id",),
        SMALL_SET,
        "AMC 2023, 40 problems; gold = answer (float -> canonical string)",
    ),
    (
        "math500",
        data_math.make_math_loader("math500", data_math.gold_plain, "HuggingFaceH4/MATH-500"),
        "HuggingFaceH4/MATH-500",
        ("unique_id",),
        LARGE_SET,
        "MATH-500 (prm800k split); gold = answer",
    ),
    (
        "minerva_math",
        _minerva_loader(),
        "math-ai/minervamath",
        ("idx",),
        LARGE_SET,
        "Minerva Math, 272 problems; gold = last \\boxed{} of solution",
    ),
    # Hothan/OlympiadBench: config and split from memory (research notes eval.md §1.2), unverified offline
    (
        "olympiadbench",
        data_math.make_math_loader(
            "olympiadbench",
            data_math.gold_olympiad,
            "Hothan/OlympiadBench",
            default_split="train",
            default_config="OE_TO_maths_en_COMP",
        ),
        "Hothan/OlympiadBench",
        ("id",),
        LARGE_SET,
        "OlympiadBench OE_TO_maths_en_COMP, 675 problems; gold = final_answer[0] without $",
    ),
]

MATH_BENCHMARKS: List[str] = []
for _name, _load, _src, _ids, _sampling, _desc in _MATH_SETS:
    register_benchmark(
        Benchmark(
            name=_name,
            load=_load,
            prompt=_math_prompt,
            graders=["math_verify", "qwen"],
            sampling=_sampling,
            problem_id=data_math.id_from_fields(*_ids),
            default_source=_src,
            options=dict(_LOAD_OPTIONS),
            description=_desc,
        )
    )
    MATH_BENCHMARKS.append(_name)

KNOWN_BENCHMARKS = MATH_BENCHMARKS + [b for b in PLUGIN_BENCHMARKS if b not in MATH_BENCHMARKS]


class NotInstalledError(LookupError):
    """A benchmark or grader whose plug-in module is not available."""


def _import_plugins() -> Dict[str, str]:
    """Import every plug-in module that exists; return {module: error} for the ones that failed."""
    errors: Dict[str, str] = {}
    for module in PLUGIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name) or exc.name == module:
                errors[module] = "module not installed"
            else:
                errors[module] = f"missing dependency {exc.name!r}: {exc}"
        except Exception as exc:  # a broken plug-in must not break the math benchmarks
            errors[module] = f"{type(exc).__name__}: {exc}"
    return errors


def _ensure_graders_module() -> None:
    from .graders import math as _math  # noqa: F401  registers math_verify and qwen


def get_benchmark(name: str) -> Benchmark:
    """The registered benchmark ``name``; plug-ins are imported on first need."""
    registry = registered_benchmarks()
    if name in registry:
        return registry[name]
    errors = _import_plugins()
    registry = registered_benchmarks()
    if name in registry:
        return registry[name]
    if name in PLUGIN_BENCHMARKS:
        module = PLUGIN_BENCHMARKS[name]
        why = errors.get(module, "the module did not register it")
        raise NotInstalledError(
            f"benchmark {name!r} is provided by {module}, which is not installed or failed to load ({why})"
        )
    raise KeyError(f"unknown benchmark {name!r}; available: {', '.join(sorted(set(registry) | set(KNOWN_BENCHMARKS)))}")


def make_grader(name: str, config: GraderConfig) -> Grader:
    """Build grader ``name``; plug-ins are imported on first need."""
    _ensure_graders_module()
    factories = registered_graders()
    if name not in factories:
        errors = _import_plugins()
        factories = registered_graders()
        if name not in factories:
            detail = "; ".join(f"{m}: {e}" for m, e in errors.items())
            raise NotInstalledError(
                f"grader {name!r} is not registered (available: "
                f"{', '.join(sorted(factories))}){'; plug-ins: ' + detail if detail else ''}"
            )
    return factories[name](config)


def list_benchmarks() -> Dict[str, str]:
    """name -> description, or a "not installed" note for absent plug-ins."""
    _import_plugins()
    out = {name: b.description for name, b in registered_benchmarks().items()}
    for name, module in PLUGIN_BENCHMARKS.items():
        out.setdefault(name, f"(not installed: provided by {module})")
    return out
