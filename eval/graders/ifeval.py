"""IF-Eval (Zhou et al. 2023): benchmark entry, loader and the strict/loose graders.

The instruction checkers are Google's, as shipped in lm-eval 0.4.13 (``lm_eval/tasks/ifeval/
{instructions_util, instructions, instructions_registry, utils}.py``); nothing is re-implemented:
strict and loose scoring are lm-eval's ``test_instruction_following_strict`` /
``test_instruction_following_loose`` (loose = any of Google's 8 variants of the response: as is,
without ``*``, without the first line, the last line, both, and those three without ``*``; kwargs
with None/empty values are dropped before ``build_description``).

Two graders are registered: ``ifeval_strict`` and ``ifeval_loose``. ``Verdict.correct`` is the
prompt-level result (all instructions followed), so the harness' avg@k is the prompt-level accuracy;
``extra_metrics`` adds ``inst_level_acc`` (instructions followed / instructions, over all responses)
and ``prompt_level_acc``. Four numbers in total, as in the paper and lm-eval.

Offline data: the checkers need NLTK's ``punkt_tab`` English tables (sentence counting and
``word_tokenize``). They are looked up in, in order, the grader option ``nltk_data=DIR``, the
``NLTK_DATA`` environment variable, then NLTK's default paths; if absent we raise an error that names
``NLTK_DATA`` and the fix. We never download (lm-eval's module would call ``nltk.download`` at
import; we make that call fail loudly instead).

Determinism: ``langdetect.DetectorFactory.seed = 0`` and ``random.seed(f"{seed}:{key}")`` before each
(prompt, response) check. (``keywords:letter_frequency`` with a non-letter ``letter``, keys 1122 and
1129, makes Google's builder draw a random letter; seeding fixes the draw, the original paper's runs
were unseeded.)
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import random
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .base import Benchmark, PromptOptions, SamplingDefaults, Verdict, register_benchmark, register_grader

IFEVAL_HF_ID = "google/IFEval"
LM_EVAL_FILES = ("instructions_util", "instructions", "instructions_registry", "utils")
_LM_EVAL_IMPORT = "from lm_eval.tasks.ifeval import"
_PRIVATE_PACKAGE = "_openrlhf_steer_ifeval_checkers"
PUNKT_TAB = os.path.join("tokenizers", "punkt_tab", "english")


class IfevalDataError(FileNotFoundError):
    """NLTK's punkt_tab tables are missing."""


# --------------------------------------------------------------------------------------------
# NLTK data
# --------------------------------------------------------------------------------------------
def _candidate_dirs(nltk_data: Optional[str]) -> Tuple[List[str], str]:
    if nltk_data:
        return [os.path.expanduser(nltk_data)], f"nltk_data={nltk_data!r}"
    env = os.environ.get("NLTK_DATA")
    if env:
        return [p for p in env.split(os.pathsep) if p], f"NLTK_DATA={env!r}"
    import nltk

    return [str(p) for p in nltk.data.path], "NLTK's default paths (NLTK_DATA is not set)"


def locate_punkt_tab(nltk_data: Optional[str] = None) -> str:
    """The NLTK data folder holding tokenizers/punkt_tab/english; raises ``IfevalDataError``."""
    dirs, where = _candidate_dirs(nltk_data)
    for d in dirs:
        if os.path.isfile(os.path.join(d, PUNKT_TAB, "sent_starters.txt")):
            return os.path.abspath(d)
    raise IfevalDataError(
        f"IF-Eval needs NLTK's punkt_tab English tokenizer data (tokenizers/punkt_tab/english/), not found in "
        f"{where}. Fix: set NLTK_DATA to a folder that contains tokenizers/punkt_tab/english (in this project: "
        "NLTK_DATA=../shared/data/ifeval/nltk_data), or pass --grader-option nltk_data=DIR. To create one on a "
        "machine with internet access: python -m nltk.downloader -d DIR punkt_tab. It is never downloaded "
        "at run time."
    )


# --------------------------------------------------------------------------------------------
# lm-eval's checker modules, without lm_eval.tasks
# --------------------------------------------------------------------------------------------
_LOAD_LOCK = threading.Lock()


def _lm_eval_ifeval_dir() -> Path:
    # find_spec on the top-level package locates it without running lm_eval/tasks/__init__.py
    # (that file builds lm-eval's TaskManager and needs its heavy dependency stack).
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "IF-Eval uses Google's checkers shipped by lm-eval: pip install --no-deps lm-eval==0.4.13 "
            "langdetect immutabledict nltk"
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "tasks" / "ifeval"
    if not all((folder / f"{name}.py").is_file() for name in LM_EVAL_FILES):
        raise RuntimeError(
            f"lm-eval at {folder.parent.parent} has no tasks/ifeval checker files; install lm-eval==0.4.13"
        )
    return folder


@contextlib.contextmanager
def _no_nltk_download():
    import nltk

    original = nltk.download

    def refuse(*args, **kwargs):
        raise IfevalDataError("refusing to download NLTK data at run time; set NLTK_DATA (see locate_punkt_tab)")

    nltk.download = refuse
    try:
        yield
    finally:
        nltk.download = original


def load_checkers(nltk_data: Optional[str] = None) -> types.ModuleType:
    """lm-eval's IF-Eval modules as the private package ``_openrlhf_steer_ifeval_checkers``.

    The four files are compiled from lm-eval's folder with their single intra-package import
    (``from lm_eval.tasks.ifeval import X``) pointed at the private package, so importing them never
    executes ``lm_eval/tasks/__init__.py``. The real ``lm_eval`` modules, if any, are untouched.
    """
    data_dir = locate_punkt_tab(nltk_data)
    import nltk

    if data_dir not in nltk.data.path:
        nltk.data.path.insert(0, data_dir)
    with _LOAD_LOCK:
        package = sys.modules.get(_PRIVATE_PACKAGE)
        if package is not None and getattr(package, "utils", None) is not None:
            return package
        folder = _lm_eval_ifeval_dir()
        package = types.ModuleType(_PRIVATE_PACKAGE, "Google's IF-Eval checkers, loaded from lm-eval")
        package.__path__ = [str(folder)]
        sys.modules[_PRIVATE_PACKAGE] = package
        loaded = []
        try:
            with _no_nltk_download():
                for name in LM_EVAL_FILES:
                    path = folder / f"{name}.py"
                    source = path.read_text(encoding="utf-8")
                    source = source.replace(_LM_EVAL_IMPORT, f"from {_PRIVATE_PACKAGE} import")
                    if "lm_eval" in "".join(
                        line for line in source.splitlines() if line.lstrip().startswith(("import ", "from "))
                    ):
                        raise RuntimeError(
                            f"{path} imports another lm_eval module; this lm-eval version is not "
                            "supported (use lm-eval==0.4.13)"
                        )
                    module = types.ModuleType(f"{_PRIVATE_PACKAGE}.{name}")
                    module.__file__, module.__package__ = str(path), _PRIVATE_PACKAGE
                    sys.modules[module.__name__] = module
                    loaded.append(module.__name__)
                    exec(compile(source, str(path), "exec"), module.__dict__)
                    setattr(package, name, module)
        except BaseException:
            for name in loaded + [_PRIVATE_PACKAGE]:
                sys.modules.pop(name, None)
            raise
        import langdetect

        langdetect.DetectorFactory.seed = 0  # langdetect is random unless seeded
        return package


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------
MODES = ("strict", "loose")


def check_response(
    checkers: types.ModuleType, row: Dict[str, Any], response: str, mode: str, seed: int = 0
) -> List[bool]:
    """Per-instruction results of one response (lm-eval's strict or loose test)."""
    utils = checkers.utils
    example = utils.InputExample(
        key=row["key"],
        instruction_id_list=list(row["instruction_id_list"]),
        prompt=row["prompt"],
        kwargs=[dict(k or {}) for k in row["kwargs"]],
    )
    test = utils.test_instruction_following_strict if mode == "strict" else utils.test_instruction_following_loose
    random.seed(f"{seed}:{row['key']}")
    return [bool(x) for x in test(example, response if isinstance(response, str) else "").follow_instruction_list]


def validate_row(row: Any, where: str, registry: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a JSON object")
    for key, kind in (("key", int), ("prompt", str), ("instruction_id_list", list), ("kwargs", list)):
        if key not in row:
            raise ValueError(
                f"{where}: missing field {key!r} (IF-Eval rows have key, prompt, instruction_id_list, kwargs)"
            )
        if not isinstance(row[key], kind) or (kind is int and isinstance(row[key], bool)):
            raise ValueError(f"{where}: field {key!r} must be {kind.__name__}, got {type(row[key]).__name__}")
    if len(row["kwargs"]) != len(row["instruction_id_list"]):
        raise ValueError(
            f"{where}: kwargs has {len(row['kwargs'])} entries but instruction_id_list has "
            f"{len(row['instruction_id_list'])}; they must match one to one"
        )
    for index, kw in enumerate(row["kwargs"]):
        if kw is not None and not isinstance(kw, dict):
            raise ValueError(f"{where}: kwargs[{index}] must be an object")
    if registry is not None:
        unknown = [i for i in row["instruction_id_list"] if i not in registry]
        if unknown:
            raise ValueError(f"{where}: unknown instruction id(s) {unknown}")
    return row


def load_ifeval(source: Optional[str] = None, split: Optional[str] = None) -> List[dict]:
    """IF-Eval prompts from a local jsonl (Google's input_data.jsonl) or a hub id (default google/IFEval)."""
    from ..io_utils import iter_jsonl

    source = source or IFEVAL_HF_ID
    path = Path(os.path.expanduser(source))
    if path.is_file():
        rows = [validate_row(obj, f"{path}:{lineno}") for lineno, obj in iter_jsonl(path)]
    elif source.startswith((".", "/", "~")) or source.endswith(".jsonl"):
        raise FileNotFoundError(f"ifeval source {source!r} does not exist")
    else:
        try:
            import datasets
        except ImportError:
            raise RuntimeError("loading IF-Eval from the hub needs the datasets package; or pass input_data.jsonl")
        try:
            ds = datasets.load_dataset(source, split=split or "train")
        except Exception as exc:
            raise RuntimeError(
                f"cannot load {source!r} from the Hugging Face hub ({type(exc).__name__}: {exc}); "
                "offline, pass Google's input_data.jsonl as the source"
            ) from None
        rows = [validate_row(dict(r), f"{source} row {i}") for i, r in enumerate(ds)]
    keys = set()
    for row in rows:
        if row["key"] in keys:
            raise ValueError(f"ifeval: duplicate key {row['key']} in {source}")
        keys.add(row["key"])
    if not rows:
        raise ValueError(f"ifeval: no prompts in {source}")
    return rows


def ifeval_prompt(row: dict, options: PromptOptions):
    if not options.chat:
        return row["prompt"]
    return ([{"role": "system", "content": options.system}] if options.system else []) + [
        {"role": "user", "content": row["prompt"]}
    ]


class IfevalGrader:
    """``ifeval_strict`` or ``ifeval_loose``."""

    def __init__(self, mode: str, seed: int = 0, nltk_data: Optional[str] = None) -> None:
        if mode not in MODES:
            raise ValueError(f"IF-Eval mode must be one of {MODES}, got {mode!r}")
        self.mode, self.seed, self.nltk_data = mode, int(seed), nltk_data
        self.name = f"ifeval_{mode}"
        self.checkers = load_checkers(nltk_data)

    def grade(self, problems: Sequence[dict], responses: Sequence[Sequence[str]]) -> List[List[Verdict]]:
        if len(problems) != len(responses):
            raise ValueError(f"{self.name}: {len(problems)} problems but {len(responses)} response lists")
        registry = self.checkers.instructions_registry.INSTRUCTION_DICT
        for row in problems:
            validate_row(row, f"ifeval key {row.get('key') if isinstance(row, dict) else '?'}", registry)
        from tqdm.auto import tqdm

        out: List[List[Verdict]] = []
        for row, rs in tqdm(list(zip(problems, responses)), desc=self.name, unit="prompt", leave=False):
            verdicts = []
            for response in rs:
                start = time.perf_counter()
                followed = check_response(self.checkers, row, response, self.mode, self.seed)
                verdicts.append(
                    Verdict(
                        correct=all(followed),
                        extracted=None,
                        seconds=time.perf_counter() - start,
                        detail={
                            "instruction_id_list": list(row["instruction_id_list"]),
                            "follow_instruction_list": followed,
                        },
                    )
                )
            out.append(verdicts)
        return out

    def extra_metrics(self, problems: Sequence[dict], verdicts: Sequence[Sequence[Verdict]]) -> Dict[str, float]:
        return aggregate(verdicts)


def aggregate(verdicts: Sequence[Sequence[Verdict]]) -> Dict[str, float]:
    """Prompt-level and instruction-level accuracy over all responses."""
    followed = [f for vs in verdicts for v in vs for f in v.detail["follow_instruction_list"]]
    prompts = [v.correct for vs in verdicts for v in vs]
    return {
        "prompt_level_acc": sum(prompts) / len(prompts) if prompts else 0.0,
        "inst_level_acc": sum(followed) / len(followed) if followed else 0.0,
    }


def _factory(mode: str):
    def make(config) -> IfevalGrader:
        options = dict(config.options or {})  # shared by all graders of a run; we read nltk_data only
        return IfevalGrader(mode, seed=config.seed, nltk_data=options.get("nltk_data"))

    return make


for _mode in MODES:
    register_grader(f"ifeval_{_mode}", _factory(_mode))

register_benchmark(
    Benchmark(
        name="ifeval",
        load=load_ifeval,
        prompt=ifeval_prompt,
        graders=["ifeval_strict", "ifeval_loose"],
        sampling=SamplingDefaults(
            n=1,
            temperature=0.0,
            top_p=1.0,
            max_tokens=1280,
            source="lm-eval ifeval.yaml: greedy (do_sample false, temperature 0), max_gen_toks 1280",
        ),
        problem_id=lambda row, index: str(row["key"]),
        default_source=IFEVAL_HF_ID,
        options={"split": "dataset split when loading from the hub (google/IFEval has only 'train')"},
        description="IF-Eval, 541 prompts; strict and loose, prompt- and instruction-level accuracy",
    )
)
