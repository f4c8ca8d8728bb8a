"""The one place that knows the command-line interfaces the reproduction suite drives.

* the training launcher ``python -m openrlhf_steer.apps.train`` = OpenRLHF 0.11.2 ``train_ppo_ray`` flags
  plus ``--entropy.method NAME --entropy.<method>.<field> VALUE``;
* the evaluation CLI ``openrlhf-steer-eval`` (``python -m openrlhf_steer_eval.cli``);
* the data preparation script ``reproduce/prepare_data.py``.

Configs speak in paper terms (``prompts_per_rollout``, ``eps_clip_high``, ...); this module maps
them to flags. When an interface changes, only this file changes.
"""

from __future__ import annotations

import json
import math
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

REPO_ROOT = Path(__file__).resolve().parents[1]
REWARD_FILE = REPO_ROOT / "reproduce" / "rewards" / "dapo_math_reward.py"
# The training reward per DAPO rule (recipe key ``reward_rule``); see the reward files' docstrings.
REWARD_FILES = {
    "minerva": REWARD_FILE,
    "strict_box": REPO_ROOT / "reproduce" / "rewards" / "dapo_math_reward_strict_box.py",
}
PREPARE_DATA = REPO_ROOT / "reproduce" / "prepare_data.py"
PREPARE_MODEL = REPO_ROOT / "reproduce" / "prepare_model.py"
TRAIN_MODULE = "openrlhf_steer.apps.train"
EVAL_MODULE = "openrlhf_steer_eval.cli"

# Keys of a prompt-dataset row written by openrlhf_steer.data.write_openrlhf_jsonl.
INPUT_KEY = "prompt"
LABEL_KEY = "label"


# --------------------------------------------------------------------------------------------------
# Node layout
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """GPUs for one training run: ``nodes`` x ``gpus_per_node``, vLLM engines of ``vllm_tp`` GPUs each.

    ``colocate`` shares every GPU between the DeepSpeed actor and the vLLM engines (OpenRLHF's
    hybrid engine, with sleep mode): then engines x TP must equal the actor GPUs.
    """

    nodes: int = 1
    gpus_per_node: int = 8
    vllm_tp: int = 1
    colocate: bool = True
    vllm_gpu_memory_utilization: float = 0.6

    def validate(self) -> None:
        if self.nodes < 1:
            raise ValueError(f"--nodes={self.nodes}: need at least 1 node")
        if self.gpus_per_node < 1:
            raise ValueError(f"--gpus={self.gpus_per_node}: need at least 1 GPU per node")
        if self.vllm_tp < 1 or (self.nodes * self.gpus_per_node) % self.vllm_tp:
            raise ValueError(
                f"--vllm-tp={self.vllm_tp} must divide the total GPU count {self.nodes * self.gpus_per_node} "
                "(engines = GPUs / TP)"
            )
        if not 0.05 <= self.vllm_gpu_memory_utilization <= 0.99:
            raise ValueError(f"--vllm-mem={self.vllm_gpu_memory_utilization}: use a fraction in [0.05, 0.99]")

    @property
    def total_gpus(self) -> int:
        return self.nodes * self.gpus_per_node

    @property
    def vllm_engines(self) -> int:
        return self.total_gpus // self.vllm_tp

    def flags(self) -> List[str]:
        out = [
            "--actor.num_nodes",
            str(self.nodes),
            "--actor.num_gpus_per_node",
            str(self.gpus_per_node),
            "--vllm.num_engines",
            str(self.vllm_engines),
            "--vllm.tensor_parallel_size",
            str(self.vllm_tp),
            "--vllm.gpu_memory_utilization",
            str(self.vllm_gpu_memory_utilization),
        ]
        if self.colocate:
            out += ["--train.colocate_all", "--vllm.enable_sleep", "--ds.enable_sleep"]
        return out


# --------------------------------------------------------------------------------------------------
# Recipe -> OpenRLHF flags
# --------------------------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _flag(name: str) -> Callable[[Any, Mapping[str, Any]], List[str]]:
    return lambda v, r: [name, _fmt(v)]


def _switch(name: str) -> Callable[[Any, Mapping[str, Any]], List[str]]:
    return lambda v, r: [name] if v else []


def _train_batch(v: Any, r: Mapping[str, Any]) -> List[str]:
    # verl counts the PPO mini-batch in prompts; OpenRLHF's --train.batch_size counts responses.
    return ["--train.batch_size", str(int(v) * int(r["samples_per_prompt"]))]


def _updates_per_rollout(v: Any, r: Mapping[str, Any]) -> List[str]:
    # N_update off-policy updates per rollout (Jin et al. §6.2) = rollout prompts / mini-batch prompts.
    prompts = int(r["prompts_per_rollout"])
    if prompts % int(v):
        raise ValueError(f"updates_per_rollout={v} must divide prompts_per_rollout={prompts}")
    return ["--train.batch_size", str(prompts // int(v) * int(r["samples_per_prompt"]))]


def _max_len(v: Any, r: Mapping[str, Any]) -> List[str]:
    return ["--data.max_len", str(int(r["max_prompt_len"]) + int(r["max_response_len"]))]


def _eps_clip(v: Any, r: Mapping[str, Any]) -> List[str]:
    return ["--actor.eps_clip_low_high", _fmt(float(r["eps_clip_low"])), _fmt(float(r["eps_clip_high"]))]


def _dual_clip(v: Any, r: Mapping[str, Any]) -> List[str]:
    return [] if v in (None, "none", False) else ["--actor.dual_clip", _fmt(float(v))]


# Recipe key -> flag builder. Keys consumed together (eps_clip_low/high, max_*_len) map once.
RECIPE_FLAGS: Dict[str, Callable[[Any, Mapping[str, Any]], List[str]]] = {
    "model": _flag("--actor.model_name_or_path"),
    "prompts_per_rollout": _flag("--rollout.batch_size"),
    "samples_per_prompt": _flag("--rollout.n_samples_per_prompt"),
    "mini_batch_prompts": _train_batch,
    "updates_per_rollout": _updates_per_rollout,
    "micro_batch_per_gpu": _flag("--train.micro_batch_size"),
    "rollout_micro_batch_per_gpu": _flag("--rollout.micro_batch_size"),
    "ppo_epochs": _flag("--train.max_epochs"),
    "epochs": _flag("--train.num_episodes"),
    "lr": _flag("--actor.adam.lr"),
    "lr_scheduler": _flag("--actor.lr_scheduler"),
    "lr_warmup_ratio": _flag("--actor.lr_warmup_ratio"),
    "min_lr_ratio": _flag("--actor.min_lr_ratio"),
    "weight_decay": _flag("--actor.adam.weight_decay"),
    "grad_clip": _flag("--actor.max_norm"),
    "eps_clip_low": _eps_clip,
    "eps_clip_high": lambda v, r: [],  # emitted with eps_clip_low
    "dual_clip": _dual_clip,
    "max_response_len": _flag("--rollout.max_new_tokens"),
    "max_prompt_len": _max_len,
    "temperature": _flag("--rollout.temperature"),
    "top_p": _flag("--rollout.top_p"),
    "advantage_estimator": _flag("--algo.advantage.estimator"),
    "kl_coef": _flag("--algo.kl.init_coef"),
    "entropy_coef": _flag("--actor.entropy_coef"),
    "loss_agg_mode": _flag("--actor.loss_agg_mode"),
    "seed": _flag("--train.seed"),
    "zero_stage": _flag("--ds.zero_stage"),
    "param_dtype": _flag("--ds.param_dtype"),
    "gradient_checkpointing": _switch("--actor.gradient_checkpointing_enable"),
    "packing_samples": _switch("--ds.packing_samples"),
    "save_steps": _flag("--ckpt.save_steps"),
    "apply_chat_template": _switch("--data.apply_chat_template"),
}

# Recipe keys that describe the run but are not OpenRLHF flags (data source, provenance, ...).
# ``max_rollout_steps`` becomes episodes (``rollout_cap``) and a selection bound; it has no flag of its own.
NON_FLAG_KEYS = {
    "train_data",
    "subset",
    "subset_size",
    "subset_clusters",
    "subset_seed",
    "seeds",
    "max_rollout_steps",
    "reward_rule",
    "max_position_embeddings",
}


# --------------------------------------------------------------------------------------------------
# Context override: a model copy whose config.json has a larger max_position_embeddings
# --------------------------------------------------------------------------------------------------
# OpenRLHF 0.11.2 has no flag that hands a config override to vLLM (no hf_overrides; max_model_len is
# --data.max_len, which vLLM refuses above the config's max_position_embeddings) or to the DeepSpeed actor.
# Both load --actor.model_name_or_path, so the recipe key ``max_position_embeddings`` trains from a copy of the
# model (reproduce/prepare_model.py: config.json changed, every other file linked) named ``<model>-ctx<N>``.
CONTEXT_KEY = "max_position_embeddings"
_CONTEXT_DIR = re.compile(r"-ctx(\d+)$")


def context_override(recipe: Mapping[str, Any]) -> Optional[int]:
    """The recipe's context override in tokens, or None (the model's own window)."""
    value = recipe.get(CONTEXT_KEY)
    if value in (None, "none", False):
        return None
    tokens = int(value)
    needed = int(recipe.get("max_prompt_len", 0)) + int(recipe.get("max_response_len", 0))
    if tokens < needed:
        raise ValueError(
            f"recipe {CONTEXT_KEY}={tokens} is below max_prompt_len + max_response_len = {needed}; raise it to at "
            f"least {needed} or lower the lengths"
        )
    return tokens


def context_model_dir(model: str, tokens: int, models_root: Path) -> Path:
    """Where the extended-context copy of ``model`` lives: ``<models_root>/<name>-ctx<tokens>``."""
    text = str(model).rstrip("/")
    is_path = text.startswith((".", "/", "~")) or Path(text).is_dir()
    name = Path(text).name if is_path else text.replace("/", "--")
    return Path(models_root) / f"{name}-ctx{int(tokens)}"


def context_model_ready(model_dir: Path, model: str, tokens: int) -> bool:
    """True when ``model_dir`` is a finished copy of ``model`` with ``tokens`` positions (prepare_model's record)."""
    record = Path(model_dir) / "context_override.json"
    if not record.is_file():
        return False
    data = json.loads(record.read_text(encoding="utf-8"))
    return data.get("model") == str(model) and int(data.get("value", -1)) == int(tokens)


def prepare_model_command(model: str, tokens: int, out_dir: Path, python: str = sys.executable) -> List[str]:
    return [
        python,
        str(PREPARE_MODEL),
        "--model",
        str(model),
        "--max-position-embeddings",
        str(int(tokens)),
        "--output",
        str(out_dir),
    ]


def context_of_model_dir(path: str) -> Optional[Tuple[int, str]]:
    """(tokens, where) when ``path`` is an extended-context copy (by its ``-ctx<N>`` name; a built copy's own
    config.json wins), else None. The preflight reads training commands through this (``context_reader``)."""
    if not path:
        return None
    match = _CONTEXT_DIR.search(Path(str(path)).name)
    if not match:
        return None
    tokens = int(match.group(1))
    config = Path(str(path)) / "config.json"
    if config.is_file():
        tokens = int(json.loads(config.read_text(encoding="utf-8")).get(CONTEXT_KEY, tokens))
    return tokens, f"--actor.model_name_or_path {path}: a copy with {CONTEXT_KEY} {tokens} (reproduce/prepare_model.py)"


def _register_preflight_reader() -> None:
    try:
        import preflight
    except ImportError:  # the pipeline is usable without the preflight
        return
    if not any(getattr(fn, "__name__", "") == "_model_dir_context" for fn in preflight.CONTEXT_OVERRIDES):

        @preflight.context_reader
        def _model_dir_context(argv: Sequence[str]) -> Optional[Tuple[int, str]]:
            return context_of_model_dir(preflight.flag_value(argv, "--actor.model_name_or_path"))


_register_preflight_reader()


def rollout_cap(recipe: Mapping[str, Any], n_prompts: int) -> Dict[str, Any]:
    """A recipe with ``max_rollout_steps`` turned into OpenRLHF episodes.

    OpenRLHF 0.11.2 has no step cap: it runs ``num_episodes`` passes over the prompts, one rollout step per
    full batch of ``prompts_per_rollout`` prompts: the trainer drops each episode's last, short batch as veRL
    does (``openrlhf_steer.integration.rollout_batches``), so an episode is ``floor(prompts / batch)`` steps
    (STEER: 17,398 // 512 = 33). Enough episodes to reach the cap are run; checkpoint selection then ignores
    steps past it (``selection_max_step``), so the table uses exactly the paper's steps.
    """
    out = dict(recipe)
    cap = out.get("max_rollout_steps")
    if cap is None:
        return out
    per_episode = int(n_prompts) // int(out["prompts_per_rollout"])
    if per_episode < 1:
        raise ValueError(
            f"{n_prompts} prompts are fewer than prompts_per_rollout {out['prompts_per_rollout']}: no full rollout "
            "batch, so no step would train; lower the recipe's prompts_per_rollout or use more prompts"
        )
    out["epochs"] = math.ceil(int(cap) / per_episode)
    return out


def recipe_flags(recipe: Mapping[str, Any]) -> List[str]:
    unknown = sorted(set(recipe) - set(RECIPE_FLAGS) - NON_FLAG_KEYS)
    if unknown:
        raise ValueError(f"recipe key(s) {unknown} have no OpenRLHF mapping; known keys: {sorted(RECIPE_FLAGS)}")
    if "mini_batch_prompts" in recipe and "updates_per_rollout" in recipe:
        raise ValueError("set either mini_batch_prompts or updates_per_rollout in a recipe, not both")
    flags: List[str] = []
    for key in RECIPE_FLAGS:  # fixed order: stable, diffable commands
        if key in recipe:
            flags += RECIPE_FLAGS[key](recipe[key], recipe)
    return flags


def method_flags(method: str, options: Mapping[str, Any]) -> List[str]:
    flags = ["--entropy.method", method]
    for field_name, value in options.items():
        if isinstance(value, (list, tuple)):
            flags += [f"--entropy.{method}.{field_name}", *[_fmt(v) for v in value]]
        elif value is None:
            flags += [f"--entropy.{method}.{field_name}", "none"]
        else:
            flags += [f"--entropy.{method}.{field_name}", _fmt(value)]
    return flags


def reward_file(recipe: Mapping[str, Any]) -> Path:
    rule = str(recipe.get("reward_rule", "minerva"))
    if rule not in REWARD_FILES:
        raise ValueError(f"reward_rule={rule!r}: choose one of {sorted(REWARD_FILES)}")
    return REWARD_FILES[rule]


def train_command(
    recipe: Mapping[str, Any],
    method: str,
    options: Mapping[str, Any],
    layout: Layout,
    prompt_data: Path,
    ckpt_dir: Path,
    log_dir: Path,
    python: str = sys.executable,
) -> List[str]:
    """The full launcher command for one table row."""
    cmd = [python, "-m", TRAIN_MODULE]
    cmd += layout.flags()
    cmd += recipe_flags(recipe)
    cmd += [
        "--data.prompt_dataset",
        str(prompt_data),
        "--data.input_key",
        INPUT_KEY,
        "--data.label_key",
        LABEL_KEY,
        "--reward.remote_url",
        str(reward_file(recipe)),
        "--ckpt.path",
        str(ckpt_dir),
        "--ckpt.output_dir",
        str(ckpt_dir / "final"),
        "--ckpt.save_hf",
        # resume an interrupted run from its latest DeepSpeed checkpoint (a no-op when there is none)
        "--ckpt.load_enable",
        "--logger.tensorboard_dir",
        str(log_dir),
    ]
    cmd += method_flags(method, options)
    return cmd


def prepare_data_command(data: Mapping[str, Any], out_path: Path, python: str = sys.executable) -> List[str]:
    cmd = [
        python,
        str(PREPARE_DATA),
        "--source",
        str(data.get("source", "BytedTsinghua-SIA/DAPO-Math-17k")),
        "--output",
        str(out_path),
    ]
    if data.get("subset"):
        cmd += [
            "--subset",
            str(data["subset"]),
            "--size",
            str(data["subset_size"]),
            "--seed",
            str(data.get("subset_seed", 0)),
        ]
        if data.get("subset_clusters"):
            cmd += ["--clusters", str(data["subset_clusters"])]
        if str(data["subset"]).startswith("kmeans"):  # App. D.3's features (prepare_data's default) unless named
            if data.get("subset_featurizer"):
                cmd += ["--featurizer", str(data["subset_featurizer"])]
            if data.get("subset_embed_model"):
                cmd += ["--embed-model", str(data["subset_embed_model"])]
    return cmd


# --------------------------------------------------------------------------------------------------
# Evaluation CLI
# --------------------------------------------------------------------------------------------------
def eval_command(
    model: Path,
    benchmarks: Sequence[str],
    sampling: Mapping[str, Any],
    output_dir: Path,
    backend: str = "vllm",
    extra: Optional[Mapping[str, Any]] = None,
    python: str = sys.executable,
) -> List[str]:
    """``openrlhf-steer-eval`` for one checkpoint. ``sampling`` holds n, k, temperature, top_p, max_tokens, seed,
    prompt_template, chat_template, max_model_len (vLLM's context; see ``openrlhf-steer-eval --help``)."""
    cmd = [python, "-m", EVAL_MODULE, "--model", str(model), "--backend", backend, "--benchmarks", ",".join(benchmarks)]
    names = {
        "n": "--n",
        "k": "--k",
        "temperature": "--temperature",
        "top_p": "--top-p",
        "max_tokens": "--max-tokens",
        "seed": "--seed",
        "prompt_template": "--prompt-template",
        "max_model_len": "--max-model-len",
    }
    for key, flag in names.items():
        if sampling.get(key) is not None:
            value = sampling[key]
            cmd += [flag, ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else _fmt(value)]
    for key, (bench, flag) in BENCHMARK_FLAGS.items():  # only for a call that scores that benchmark
        if sampling.get(key) is not None and bench in benchmarks:
            cmd += [flag, _fmt(sampling[key])]
    for key, value in (extra or {}).items():
        if value is None or value is False:
            continue
        flag = f"--{key.replace('_', '-')}"
        if isinstance(value, (list, tuple)):  # a repeatable flag, e.g. --data NAME=PATH
            for item in value:
                cmd += [flag, _fmt(item)]
        else:
            cmd += [flag] + ([] if value is True else [_fmt(value)])
    if sampling.get("graders"):
        cmd += ["--graders", ",".join(sampling["graders"])]
    if sampling.get("chat_template") is not None:
        cmd += ["--chat-template" if sampling["chat_template"] else "--no-chat-template"]
    cmd += ["--output-dir", str(output_dir)]
    return cmd


LCB_HUB_SOURCE = "livecodebench/code_generation_lite"
# Eval settings that are one benchmark's loader options: config key -> (benchmark, eval-CLI flag). The eval CLI
# refuses them in a call that does not score that benchmark, so eval_command adds them only where it does.
BENCHMARK_FLAGS = {
    "lcb_release": ("livecodebench", "--lcb-release"),
    "lcb_start_date": ("livecodebench", "--lcb-start-date"),
    "lcb_end_date": ("livecodebench", "--lcb-end-date"),
}


def eval_data_args(data_dir: Optional[Path], benchmarks: Sequence[str]) -> Dict[str, Any]:
    """Eval-CLI flags that point it at a local copy of the test sets (``--data-dir``), with two exceptions:
    IF-Eval's loader takes Google's ``input_data.jsonl`` itself, and LiveCodeBench comes from the hub unless
    the folder holds its release files (a shared folder may hold only a non-canonical sample)."""
    if data_dir is None:
        return {}
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(
            f"--eval-data-dir {data_dir} is not a folder (one sub-folder per benchmark, e.g. aime24/test.jsonl)"
        )
    out: Dict[str, Any] = {"data_dir": str(data_dir)}
    data = []
    if "ifeval" in benchmarks and (data_dir / "ifeval" / "input_data.jsonl").is_file():
        data.append(f"ifeval={data_dir / 'ifeval' / 'input_data.jsonl'}")
    if "livecodebench" in benchmarks and not (data_dir / "livecodebench" / "test.jsonl").is_file():
        data.append(f"livecodebench={LCB_HUB_SOURCE}")
    if data:
        out["data"] = data
    return out


EVAL_RESULTS_FILE = "results.json"
# The grader a table shows when its config names none: Math-Verify for math, strict IF-Eval, LiveCodeBench execution.
PREFERRED_GRADERS = ("math_verify", "qwen", "ifeval_strict", "lcb_exec")


def eval_done(output_dir: Path) -> bool:
    return (Path(output_dir) / EVAL_RESULTS_FILE).is_file()


def metric_key(metric: str, n: int) -> str:
    """The eval CLI's key of a table metric: ``avg@n`` -> ``avg@<n>``; ``pass@n`` -> ``pass@k:k=<n>&n=<n>``."""
    if metric == "avg@n":
        return f"avg@{n}"
    if metric == "pass@n":
        return f"pass@k:k={n}&n={n}"
    raise ValueError(f"unknown table metric {metric!r}; use avg@n or pass@n")


def read_eval_scores(
    output_dir: Path,
    metrics: Sequence[str],
    n: int,
    benchmarks: Optional[Sequence[str]] = None,
    graders: Sequence[str] = (),
) -> Dict[str, Dict[str, Any]]:
    """Per-benchmark scores in % from the eval CLI's ``results.json``.

    Its metric keys are ``<benchmark>/<grader>/avg@<n>`` and ``<benchmark>/<grader>/pass@k:k=<k>&n=<n>``
    (fractions). Returns ``{benchmark: {metric: value, ..., "grader": name, "by_grader": {grader: {metric: value}}}}``
    where the top-level values come from the first of ``graders`` (then ``PREFERRED_GRADERS``) that scored the
    benchmark, else its alphabetically first grader.
    """
    import json

    path = Path(output_dir) / EVAL_RESULTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"evaluation results {path} not found; did the eval command finish?")
    found: Dict[str, Dict[str, Dict[str, float]]] = {}
    for key, value in json.loads(path.read_text()).get("metrics", {}).items():
        parts = key.split("/")
        if len(parts) != 3 or not isinstance(value, (int, float)):
            continue
        bench, grader, name = parts
        for metric in metrics:
            if name == metric_key(metric, n):
                found.setdefault(bench, {}).setdefault(grader, {})[metric] = 100.0 * float(value)
    scores: Dict[str, Dict[str, Any]] = {}
    for bench, by_grader in found.items():
        if benchmarks is not None and bench not in benchmarks:
            continue
        order = list(graders) + list(PREFERRED_GRADERS)
        grader = next((g for g in order if g in by_grader), sorted(by_grader)[0])
        scores[bench] = dict(by_grader[grader], grader=grader, by_grader=by_grader)
    return scores


# The unit IF-Eval's avg@n / pass@n count (eval setting ``ifeval_level``): the eval CLI's prompt (all instructions
# followed), or the instruction (reproduce/repro_ifeval_level.py, from the CLI's per-response verdicts).
IFEVAL_LEVELS = ("prompt", "instruction")


def apply_ifeval_level(
    scores: Mapping[str, Dict[str, Any]], output_dir: Path, sampling: Mapping[str, Any]
) -> Dict[str, Dict[str, Any]]:
    """``scores`` with IF-Eval's metrics at the sampling's ``ifeval_level`` (default prompt: unchanged)."""
    level = sampling.get("ifeval_level") or "prompt"
    if level not in IFEVAL_LEVELS:
        raise ValueError(f"eval setting ifeval_level={level!r}: choose one of {list(IFEVAL_LEVELS)}")
    if level == "prompt" or "ifeval" not in scores:
        return dict(scores)
    from repro_ifeval_level import instruction_level_scores

    entry = scores["ifeval"]
    per_instruction = instruction_level_scores(Path(output_dir), str(entry["grader"]), int(sampling["n"]))
    prompt_level = {m: entry[m] for m in per_instruction if m in entry}
    updated = dict(entry, level="instruction", prompt_level=prompt_level)
    updated.update({m: per_instruction[m] for m in prompt_level})
    return dict(scores, ifeval=updated)


def eval_groups(benchmarks: Sequence[str], sampling: Mapping[str, Any]) -> List[Tuple[List[str], Dict[str, Any]]]:
    """Split benchmarks into eval-CLI calls that share one sampling setting.

    ``sampling["n"]`` (and ``k``) may be a mapping ``{benchmark: value, "default": value}``: STEER,
    for instance, reports avg@32 on AIME24/AIME25/AMC23 and avg@1 on the larger sets. Returns
    ``[(benchmarks, sampling), ...]`` in first-appearance order; ``k`` values above ``n`` are dropped.
    """

    def pick(value, bench):
        if isinstance(value, Mapping):
            if bench in value:
                return value[bench]
            if "default" in value:
                return value["default"]
            raise ValueError(f"eval setting {dict(value)} has no entry for {bench!r} and no 'default'")
        return value

    groups: Dict[str, Tuple[List[str], Dict[str, Any]]] = {}
    for bench in benchmarks:
        resolved = {key: pick(value, bench) for key, value in sampling.items()}
        n = resolved.get("n")
        if n is not None and isinstance(resolved.get("k"), (list, tuple)):
            resolved["k"] = [k for k in resolved["k"] if int(k) <= int(n)] or [1]
        key = repr(sorted(resolved.items(), key=lambda kv: kv[0]))
        groups.setdefault(key, ([], resolved))[0].append(bench)
    return list(groups.values())


def group_dir(base: Path, index: int, sampling: Mapping[str, Any], n_groups: int) -> Path:
    """Output folder of eval group ``index``: ``base`` itself when there is one group, else ``base/g<i>_n<N>``."""
    return Path(base) if n_groups == 1 else Path(base) / f"g{index}_n{sampling.get('n', 'default')}"


def shell_join(cmd: Sequence[str]) -> str:
    return " ".join(shlex.quote(str(c)) for c in cmd)
