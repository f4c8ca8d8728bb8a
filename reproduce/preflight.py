"""Preflight: check every row of a table before Ray, vLLM and DeepSpeed start, so a bad recipe fails in seconds.

run_table.py builds each row's commands exactly as it would run them (a recording dry run), parses them into a
``RowPlan`` and runs every check registered in ``CHECKS`` on it. A check is a pure function of the plan and a
``Context`` (model facts, eval-data counts, reward files; each looked up once and cached) that returns
``Result``s naming the check, the row, the value it found and the fix. Any ``fail`` stops the table with a
nonzero exit; ``warn`` is printed and does not stop it. ``--skip-preflight`` skips the checks (with a warning).

Checks (each one small function, registered below):
  context       prompt + response fits the model's context (training: vLLM's max_model_len = --data.max_len;
                eval: the recipe's prompt budget + --max-tokens), taking any context override into account
  chat_template the template exists where the row applies it, is the one model_facts.yaml records, and says
                when it inserts a default system turn into a "bare question" evaluation
  vocab         the tokenizer's vocabulary fits the embedding (len(tokenizer) <= vocab_size; Qwen2.5 pads its
                embedding to 152064 rows for a 151665-token tokenizer, which is fine)
  batch         OpenRLHF 0.11.2's batch arithmetic divides (rollout batch x samples, train batch, micro batches,
                GPUs, vLLM engines); the rules are in ``BATCH_RULES`` with the OpenRLHF code that needs them
  reward        the reward file imports and scores a known answer (+ for the right one, not + for a wrong one)
  eval_data     each benchmark's local test set is present with its expected row count

Model facts come from the model's own files when it is a local folder or the hub answers (``HF_HUB_OFFLINE``
unset), else from the committed table ``reproduce/configs/facts/model_facts.yaml``. Nothing is fetched at import.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from openrlhf_steer import shared_data

HERE = Path(__file__).resolve().parent
FACTS_FILE = HERE / "configs" / "facts" / "model_facts.yaml"
FACT_FIELDS = (
    "max_position_embeddings",
    "rope_scaling",
    "vocab_size",
    "tokenizer_vocab",
    "chat_template",
    "default_system_prompt",
)
UNKNOWN = f"unknown, add it to {FACTS_FILE.relative_to(HERE.parent)}"

OK, WARN, FAIL = "ok", "warn", "fail"


class PreflightError(ValueError):
    """At least one check failed; the message lists every failure with its fix."""


@dataclass(frozen=True)
class Result:
    check: str
    row: str
    status: str  # ok | warn | fail
    value: str  # what was found (numbers, with where they came from)
    fix: str = ""  # what to change (empty for ok)

    def line(self) -> str:
        text = f"[preflight] {self.status.upper()} {self.check} {self.row}: {self.value}"
        return text + (f"; fix: {self.fix}" if self.fix else "")


# --------------------------------------------------------------------------------------------------
# Model facts
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelFacts:
    model: str
    values: Mapping[str, Any]  # field -> value (missing: not known)
    sources: Mapping[str, str]  # field -> where the value was read
    template_text: Optional[str] = None  # the chat template itself, when read from the model's files
    assumed: frozenset = frozenset()  # fields whose table source says "[assumed]" (inferred, not read)

    def known(self, name: str) -> bool:
        return name in self.values

    def get(self, name: str) -> Any:
        return self.values.get(name)

    def cite(self, name: str) -> str:
        return self.sources.get(name, UNKNOWN)


def load_fact_table(path: Path = FACTS_FILE) -> Dict[str, ModelFacts]:
    import yaml

    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    table: Dict[str, ModelFacts] = {}
    for model, entries in (raw.get("models") or {}).items():
        values, sources, assumed = {}, {}, set()
        for name, entry in (entries or {}).items():
            if name not in FACT_FIELDS or not isinstance(entry, Mapping) or "value" not in entry:
                raise ValueError(
                    f"{path}: models.{model}.{name}: write it as {{value, source}}; fields are {FACT_FIELDS}"
                )
            values[name] = entry["value"]
            if not str(entry.get("source", "")).strip():
                raise ValueError(f"{path}: models.{model}.{name}: give the source of the value (URL and revision)")
            sources[name] = _shown_path(Path(path))  # the file holds each value's full source
            if "[assumed]" in str(entry["source"]):
                assumed.add(name)
        table[str(model)] = ModelFacts(str(model), values, sources, assumed=frozenset(assumed))
    return table


def _shown_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(HERE.parent))
    except ValueError:
        return str(path)


def _tokenizer_size(tokenizer_json: Mapping[str, Any]) -> int:
    """len(tokenizer): distinct ids of the model vocabulary and the added tokens."""
    ids = set((tokenizer_json.get("model") or {}).get("vocab", {}).values())
    ids |= {int(t["id"]) for t in tokenizer_json.get("added_tokens") or []}
    return len(ids)


def facts_from_files(model: str, files: Mapping[str, Optional[Path]], origin: str) -> ModelFacts:
    """Facts from a model's own config.json / tokenizer_config.json / tokenizer.json (any of them may be None)."""
    values: Dict[str, Any] = {}
    sources: Dict[str, str] = {}
    template_text = None
    if files.get("config.json"):
        cfg = json.loads(Path(files["config.json"]).read_text(encoding="utf-8"))
        for name in ("max_position_embeddings", "vocab_size"):
            if name in cfg:
                values[name], sources[name] = cfg[name], f"{origin}/config.json"
        values["rope_scaling"], sources["rope_scaling"] = cfg.get("rope_scaling"), f"{origin}/config.json"
    if files.get("tokenizer_config.json"):
        tcfg = json.loads(Path(files["tokenizer_config.json"]).read_text(encoding="utf-8"))
        template = tcfg.get("chat_template")
        if isinstance(template, list):  # named templates: the default one is what apply_chat_template uses
            template = next((t.get("template") for t in template if t.get("name") == "default"), None)
        if not template and files.get("chat_template.jinja"):
            template = Path(files["chat_template.jinja"]).read_text(encoding="utf-8")
        template_text = template or None
        values["chat_template"], sources["chat_template"] = bool(template), f"{origin}/tokenizer_config.json"
    if files.get("tokenizer.json"):
        size = _tokenizer_size(json.loads(Path(files["tokenizer.json"]).read_text(encoding="utf-8")))
        values["tokenizer_vocab"], sources["tokenizer_vocab"] = size, f"{origin}/tokenizer.json"
    return ModelFacts(model, values, sources, template_text)


MODEL_FILES = ("config.json", "tokenizer_config.json", "tokenizer.json", "chat_template.jinja")


def local_model_facts(folder: Path) -> ModelFacts:
    files = {name: (folder / name if (folder / name).is_file() else None) for name in MODEL_FILES}
    return facts_from_files(str(folder), files, str(folder))


def hub_model_facts(model: str) -> Optional[ModelFacts]:
    """The model's files from the hub (or its local cache); None when neither answers. Called only at check time."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:  # pragma: no cover - huggingface_hub is a requirement
        return None
    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false", "False")
    files: Dict[str, Optional[Path]] = {}
    for name in MODEL_FILES:
        try:
            files[name] = Path(hf_hub_download(model, name, local_files_only=offline, etag_timeout=5))
        except Exception:  # absent file, no network, no cache: that file's facts stay unknown
            files[name] = None
    if not files["config.json"]:
        return None
    return facts_from_files(model, files, f"https://huggingface.co/{model}/blob/main")


def merge_facts(primary: Optional[ModelFacts], fallback: Optional[ModelFacts], model: str) -> ModelFacts:
    """Facts read from the model itself win; the committed table fills what they lack."""
    values: Dict[str, Any] = {}
    sources: Dict[str, str] = {}
    for facts in (fallback, primary):
        if facts:
            values.update(facts.values)
            sources.update(facts.sources)
    return ModelFacts(model, values, sources, primary.template_text if primary else None)


# --------------------------------------------------------------------------------------------------
# Plans: what a row will run, parsed from its commands
# --------------------------------------------------------------------------------------------------
def flag_values(argv: Sequence[str], flag: str) -> List[str]:
    """Every value given to ``flag`` (``--flag v`` or ``--flag=v``; a flag may take several values)."""
    out: List[str] = []
    for i, tok in enumerate(argv):
        if tok == flag:
            j = i + 1
            while j < len(argv) and not str(argv[j]).startswith("--"):
                out.append(str(argv[j]))
                j += 1
        elif str(tok).startswith(flag + "="):
            out.append(str(tok).split("=", 1)[1])
    return out


def flag_value(argv: Sequence[str], flag: str, default: Any = None) -> Any:
    vals = flag_values(argv, flag)
    return vals[0] if vals else default


def has_flag(argv: Sequence[str], flag: str) -> bool:
    return flag in argv


def _int(argv: Sequence[str], flag: str, default: Optional[int] = None) -> Optional[int]:
    value = flag_value(argv, flag)
    return default if value is None else int(value)


@dataclass(frozen=True)
class TrainPlan:
    """The numbers of one training command (OpenRLHF 0.11.2 defaults where the command gives none)."""

    max_len: int
    max_new_tokens: int
    rollout_batch: int
    samples: int
    train_batch: int
    micro_train: int
    micro_rollout: int
    actor_gpus: int
    ring: int
    ds_tp: int
    vllm_engines: int
    vllm_tp: int
    colocate: bool
    async_train: bool
    apply_chat_template: bool
    reward_files: Tuple[str, ...]
    context_override: Optional[Tuple[int, str]] = None  # (tokens, where it is set)
    runner: str = "openrlhf"  # "openrlhf" (batch rules apply) or another trainer (estimator)

    @property
    def prompt_len(self) -> int:
        return self.max_len - self.max_new_tokens


def train_plan_from_argv(argv: Sequence[str]) -> TrainPlan:
    """Parse ``python -m openrlhf_steer.apps.train ...`` (defaults: OpenRLHF 0.11.2's cli/train_ppo_ray.py)."""
    max_len = _int(argv, "--data.max_len", 2048)
    return TrainPlan(
        max_len=max_len,
        max_new_tokens=_int(argv, "--rollout.max_new_tokens", max_len),
        rollout_batch=_int(argv, "--rollout.batch_size", 1024),
        samples=_int(argv, "--rollout.n_samples_per_prompt", 1),
        train_batch=_int(argv, "--train.batch_size", 128),
        micro_train=_int(argv, "--train.micro_batch_size", 1),
        micro_rollout=_int(argv, "--rollout.micro_batch_size", 1),
        actor_gpus=_int(argv, "--actor.num_nodes", 1) * _int(argv, "--actor.num_gpus_per_node", 1),
        ring=_int(argv, "--ds.ring_attn_size", 1),
        ds_tp=_int(argv, "--ds.tensor_parallel_size", 1),
        vllm_engines=_int(argv, "--vllm.num_engines", 0),
        vllm_tp=_int(argv, "--vllm.tensor_parallel_size", 1),
        colocate=has_flag(argv, "--train.colocate_all"),
        async_train=has_flag(argv, "--train.async_enable"),
        apply_chat_template=has_flag(argv, "--data.apply_chat_template"),
        reward_files=tuple(u for v in flag_values(argv, "--reward.remote_url") for u in v.split(",") if u),
        context_override=context_override_of(argv),
    )


@dataclass(frozen=True)
class EvalPlan:
    """One eval-CLI call (``openrlhf-steer-eval``)."""

    model: str
    benchmarks: Tuple[str, ...]
    max_tokens: Optional[int]
    max_model_len: Optional[int]
    chat: bool
    chat_explicit: bool  # the command states --chat-template / --no-chat-template (the config chose on purpose)
    prompt_template: Optional[str]
    system_prompt: Optional[str]
    data_dir: Optional[str]
    data: Mapping[str, str]  # benchmark -> source given with --data NAME=SRC
    lcb_release: Optional[str]


def eval_plan_from_argv(argv: Sequence[str]) -> EvalPlan:
    benches = tuple(b for v in flag_values(argv, "--benchmarks") for b in v.split(",") if b)
    pairs = dict(v.split("=", 1) for v in flag_values(argv, "--data") if "=" in v)
    return EvalPlan(
        model=str(flag_value(argv, "--model", "")),
        benchmarks=benches,
        max_tokens=_int(argv, "--max-tokens"),
        max_model_len=_int(argv, "--max-model-len"),
        chat=not has_flag(argv, "--no-chat-template"),  # the eval CLI's default is on
        chat_explicit=has_flag(argv, "--chat-template") or has_flag(argv, "--no-chat-template"),
        prompt_template=flag_value(argv, "--prompt-template"),
        system_prompt=flag_value(argv, "--system-prompt"),
        data_dir=flag_value(argv, "--data-dir"),
        data=pairs,
        lcb_release=flag_value(argv, "--lcb-release"),
    )


@dataclass(frozen=True)
class RowPlan:
    table: str
    row: str
    model: str  # the model the row starts from (trained rows) or evaluates as released
    train: Optional[TrainPlan] = None
    evals: Tuple[EvalPlan, ...] = ()
    prompt_budget: Optional[int] = None  # the recipe's max_prompt_len: the eval prompt budget too

    @property
    def name(self) -> str:
        return f"{self.table}/{self.row}"


# --------------------------------------------------------------------------------------------------
# Context overrides: a registry of readers, each returning (tokens, where) when the command sets one
# --------------------------------------------------------------------------------------------------
ContextReader = Callable[[Sequence[str]], Optional[Tuple[int, str]]]
CONTEXT_OVERRIDES: List[ContextReader] = []


def context_reader(fn: ContextReader) -> ContextReader:
    CONTEXT_OVERRIDES.append(fn)
    return fn


def context_override_of(argv: Sequence[str]) -> Optional[Tuple[int, str]]:
    found = [hit for reader in CONTEXT_OVERRIDES if (hit := reader(argv))]
    return max(found) if found else None


def vllm_derived_context(facts: ModelFacts) -> Optional[int]:
    """The longest max_model_len vLLM accepts for these facts (its ``_get_and_verify_max_len``): the config's
    max_position_embeddings, times the rope-scaling factor except for llama3/longrope/su scaling, which are
    already counted; for yarn the factor multiplies original_max_position_embeddings."""
    base = facts.get("max_position_embeddings")
    if base is None:
        return None
    scaling = facts.get("rope_scaling") or {}
    kind = scaling.get("rope_type") or scaling.get("type")
    if not scaling or kind in ("llama3", "longrope", "su", "default", "mrope"):
        return int(base)
    factor = float(scaling.get("factor", 1.0))
    if kind == "yarn":
        base = scaling.get("original_max_position_embeddings", base)
    return int(base * factor)


# --------------------------------------------------------------------------------------------------
# The check context: cached look-ups
# --------------------------------------------------------------------------------------------------
@dataclass
class Context:
    fact_table: Mapping[str, ModelFacts] = field(default_factory=load_fact_table)
    use_hub: bool = True
    _facts: Dict[str, ModelFacts] = field(default_factory=dict)
    _rewards: Dict[str, Tuple[str, str, str]] = field(default_factory=dict)
    _counts: Dict[str, Tuple[int, str]] = field(default_factory=dict)

    def facts(self, model: str) -> ModelFacts:
        if model not in self._facts:
            live: Optional[ModelFacts] = None
            if Path(model).is_dir():
                live = local_model_facts(Path(model))
            elif self.use_hub:
                live = hub_model_facts(model)
            self._facts[model] = merge_facts(live, self.fact_table.get(model), model)
        return self._facts[model]


CheckFn = Callable[[RowPlan, Context], List[Result]]
CHECKS: List[Tuple[str, CheckFn]] = []


def check(name: str) -> Callable[[CheckFn], CheckFn]:
    def register(fn: CheckFn) -> CheckFn:
        CHECKS.append((name, fn))
        return fn

    return register


def _missing(facts: ModelFacts, names: Iterable[str]) -> List[str]:
    return [n for n in names if facts.get(n) is None]


def _unknown(name: str, plan: RowPlan, facts: ModelFacts, fields: Sequence[str]) -> Result:
    return Result(
        name,
        plan.name,
        FAIL,
        f"{facts.model}: {', '.join(fields)} {UNKNOWN}",
        f"add {facts.model} with {', '.join(fields)} and their source to {FACTS_FILE.relative_to(HERE.parent)}, "
        "or pass a local model folder",
    )


# --------------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------------
@check("context")
def check_context(plan: RowPlan, ctx: Context) -> List[Result]:
    facts = ctx.facts(plan.model)
    if _missing(facts, ["max_position_embeddings"]):
        return [_unknown("context", plan, facts, ["max_position_embeddings"])]
    derived = vllm_derived_context(facts)
    limit_text = (
        f"{facts.model} max_position_embeddings {facts.get('max_position_embeddings')} "
        f"({facts.cite('max_position_embeddings')})"
    )
    if facts.get("rope_scaling"):
        limit_text += f", rope_scaling {facts.get('rope_scaling')} -> vLLM context {derived}"
    out: List[Result] = []
    if plan.train:
        t = plan.train
        limit, why = derived, limit_text
        if t.context_override:
            limit, why = t.context_override[0], f"context override {t.context_override[0]} ({t.context_override[1]})"
        value = f"prompt {t.prompt_len} + response {t.max_new_tokens} = {t.max_len} tokens (--data.max_len); {why}"
        if t.max_len > limit:
            out.append(
                Result(
                    "context",
                    plan.name,
                    FAIL,
                    f"training needs {value}: {t.max_len} > {limit}",
                    "lower the recipe's max_prompt_len/max_response_len to fit, or give the row a context override "
                    "(a larger max_position_embeddings / rope scaling) that reaches both vLLM (max_model_len) and "
                    "DeepSpeed, and record why",
                )
            )
        else:
            out.append(Result("context", plan.name, OK, f"training {value}"))
    out.extend(eval_context_results(plan, derived, limit_text))
    return out


def eval_model_context(plan: RowPlan, ev: EvalPlan, derived: int, limit_text: str) -> Tuple[int, str]:
    """The context of the model an eval call loads: an extended-context copy it names, else the trained
    context override (a checkpoint keeps the config it was trained with), else the model's own."""
    named = context_override_of(["--actor.model_name_or_path", ev.model]) if ev.model else None
    if named:
        return named[0], f"context override {named[0]} ({named[1]})"
    if plan.train and plan.train.context_override:
        tokens, where = plan.train.context_override
        return tokens, f"the trained context override {tokens} ({where})"
    return derived, limit_text


def eval_context_results(plan: RowPlan, derived: int, limit_text: str) -> List[Result]:
    """One result per row for its eval calls: prompt budget + --max-tokens must fit the vLLM context, and an
    explicit --max-model-len must not exceed the model's (vLLM refuses it)."""
    prompt = plan.prompt_budget or 0
    findings = []  # (status, value, fix) per eval call
    for ev in plan.evals:
        if ev.max_tokens is None:
            continue
        model_ctx, why = eval_model_context(plan, ev, derived, limit_text)
        need = prompt + ev.max_tokens
        value = f"eval ({','.join(ev.benchmarks)}): prompt budget {prompt} + --max-tokens {ev.max_tokens} = {need}"
        if ev.max_model_len and ev.max_model_len > model_ctx:
            findings.append(
                (
                    FAIL,
                    f"{value}; --max-model-len {ev.max_model_len} > {why}: vLLM refuses a max_model_len above the "
                    "model's context",
                    "lower eval.max_model_len, or evaluate a model copy with the larger context "
                    "(the recipe's max_position_embeddings)",
                )
            )
            continue
        limit = ev.max_model_len or model_ctx
        where = f"--max-model-len {ev.max_model_len} ({why})" if ev.max_model_len else why
        if need > limit:
            findings.append(
                (
                    FAIL,
                    f"{value}; {where}: {need} > {limit} (vLLM would cut responses short of max_tokens)",
                    "lower eval.max_tokens, or evaluate with a larger context (eval.max_model_len on a model with "
                    "that context)",
                )
            )
        else:
            findings.append((OK, f"{value}; {where}", ""))
    failed = [f for f in findings if f[0] == FAIL]
    return [Result("context", plan.name, *f) for f in (failed or findings[:1])]


def rendered(template: str) -> str:
    """The template applied to one user turn, as transformers renders it (a sandboxed Jinja environment with
    ``raise_exception`` and ``strftime_now``); the template text itself when it does not render here."""
    try:
        import datetime

        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message):
            raise ValueError(message)

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals.update(
            raise_exception=raise_exception, strftime_now=lambda fmt: datetime.datetime.now().strftime(fmt)
        )
        return env.from_string(template).render(
            messages=[{"role": "user", "content": "Q"}], add_generation_prompt=True, bos_token="", eos_token=""
        )
    except Exception:  # an exotic template: compare with its text, string-literal escapes undone
        return template.replace("\\\\", "\\")


@check("chat_template")
def check_chat_template(plan: RowPlan, ctx: Context) -> List[Result]:
    facts = ctx.facts(plan.model)
    uses = (["training (--data.apply_chat_template)"] if plan.train and plan.train.apply_chat_template else []) + [
        f"eval of {','.join(ev.benchmarks)}" for ev in plan.evals if ev.chat
    ]
    if not uses:
        return [Result("chat_template", plan.name, OK, "no stage applies a chat template")]
    if _missing(facts, ["chat_template"]):
        return [_unknown("chat_template", plan, facts, ["chat_template"])]
    if not facts.get("chat_template"):
        return [
            Result(
                "chat_template",
                plan.name,
                FAIL,
                f"{facts.model} has no chat template ({facts.cite('chat_template')}) but {'; '.join(uses)} applies one",
                "set the recipe's apply_chat_template false / the eval's chat_template false, or use a tokenizer "
                "that has one",
            )
        ]
    out: List[Result] = []
    recorded = ctx.fact_table.get(facts.model)
    expected_system = recorded.get("default_system_prompt") if recorded else None
    if facts.template_text is not None and expected_system and expected_system not in rendered(facts.template_text):
        digest = hashlib.sha256(facts.template_text.encode()).hexdigest()[:12]
        # a value the table only assumed is the table's error: say so, do not stop the run
        guessed = "default_system_prompt" in recorded.assumed
        out.append(
            Result(
                "chat_template",
                plan.name,
                WARN if guessed else FAIL,
                f"{facts.model}'s template (sha256 {digest}, {facts.cite('chat_template')}) lacks the default system "
                f"turn {expected_system!r} that model_facts.yaml records: it is not the template the row means",
                "use the released tokenizer, or update model_facts.yaml if this template is intended",
            )
        )
    system = facts.get("default_system_prompt")
    for ev in plan.evals:
        implicit = ev.chat and not ev.chat_explicit and ev.system_prompt is None
        if implicit and system and ev.prompt_template == "question":
            out.append(
                Result(
                    "chat_template",
                    plan.name,
                    WARN,
                    f"eval of {','.join(ev.benchmarks)} asks for the bare question, but {facts.model}'s template "
                    f"inserts the system turn {system!r} when none is given ({facts.cite('default_system_prompt')})",
                    "state the choice in the config: eval.chat_template true (keep the template's system turn), "
                    "false, or a system prompt",
                )
            )
    if not out:
        out.append(
            Result("chat_template", plan.name, OK, f"{facts.model} has a chat template; used by {'; '.join(uses)}")
        )
    return out


@check("vocab")
def check_vocab(plan: RowPlan, ctx: Context) -> List[Result]:
    facts = ctx.facts(plan.model)
    missing = _missing(facts, ["tokenizer_vocab", "vocab_size"])
    if missing:
        return [_unknown("vocab", plan, facts, missing)]
    tok, emb = int(facts.get("tokenizer_vocab")), int(facts.get("vocab_size"))
    value = (
        f"{facts.model}: tokenizer {tok} tokens ({facts.cite('tokenizer_vocab')}), embedding {emb} rows "
        f"({facts.cite('vocab_size')})"
    )
    if tok > emb:
        return [
            Result(
                "vocab",
                plan.name,
                FAIL,
                f"{value}: {tok} > {emb}, token ids past {emb - 1} have no embedding",
                "use the tokenizer released with the model (or resize the embedding) so that "
                "len(tokenizer) <= vocab_size",
            )
        ]
    return [Result("vocab", plan.name, OK, value + (" (padded embedding)" if emb > tok else ""))]


@dataclass(frozen=True)
class BatchRule:
    name: str
    holds: Callable[[TrainPlan], bool]
    value: Callable[[TrainPlan], str]
    why: str  # the OpenRLHF 0.11.2 code that needs it
    fix: str


def _dp(t: TrainPlan) -> int:
    return max(t.actor_gpus // t.ring // t.ds_tp, 1)


def _rollout_micro_batches(t: TrainPlan) -> int:
    """split_rollout_samples' count: slices of --rollout.micro_batch_size, the last one possibly shorter."""
    return -(-(t.rollout_batch * t.samples) // t.micro_rollout)


BATCH_RULES: Tuple[BatchRule, ...] = (
    BatchRule(
        "colocated engines fill the actor GPUs",
        lambda t: not t.colocate or t.async_train or t.vllm_engines * t.vllm_tp == t.actor_gpus,
        lambda t: f"vLLM engines {t.vllm_engines} x TP {t.vllm_tp} vs actor GPUs {t.actor_gpus}",
        "cli/train_ppo_ray.py asserts engines x TP == nodes x GPUs under --train.colocate_all",
        "make --vllm-tp divide the GPU count (engines = GPUs / TP) or pass --no-colocate",
    ),
    BatchRule(
        "rollout micro-batch divides the rollout",
        lambda t: (t.rollout_batch * t.samples) % t.micro_rollout == 0,
        lambda t: f"rollout {t.rollout_batch} x {t.samples} samples = {t.rollout_batch * t.samples} vs rollout "
        f"micro-batch {t.micro_rollout}",
        "experience_maker.split_rollout_samples cuts the rollout into micro-batches of --rollout.micro_batch_size",
        "choose rollout_micro_batch_per_gpu dividing prompts_per_rollout x samples_per_prompt",
    ),
    BatchRule(
        "enough rollout micro-batches for every DP rank",
        lambda t: (t.rollout_batch * t.samples) // t.micro_rollout >= _dp(t),
        lambda t: f"{(t.rollout_batch * t.samples) // t.micro_rollout} rollout micro-batches vs {_dp(t)} DP ranks",
        "cli/train_ppo_ray.py asserts n_samples x rollout batch // rollout micro-batch >= actor ranks",
        "raise the rollout batch or lower rollout_micro_batch_per_gpu",
    ),
    BatchRule(
        "rollout micro-batches split evenly over DP ranks",
        lambda t: _rollout_micro_batches(t) % _dp(t) == 0,
        lambda t: f"{_rollout_micro_batches(t)} rollout micro-batches over {_dp(t)} DP ranks",
        "launcher.async_run_method_batch gives each rank ceil(n / ranks) micro-batches; uneven shares give ranks "
        "different optimizer-step counts and the ZeRO collectives hang",
        "make prompts_per_rollout x samples_per_prompt / rollout_micro_batch_per_gpu a multiple of the GPU count",
    ),
    BatchRule(
        "train batch = micro-batch x grad-accumulation x DP ranks",
        lambda t: t.train_batch >= t.micro_train * _dp(t) and t.train_batch % (t.micro_train * _dp(t)) == 0,
        lambda t: f"train batch {t.train_batch} vs micro-batch {t.micro_train} x {_dp(t)} DP ranks "
        f"= {t.micro_train * _dp(t)}",
        "DeepSpeed asserts train_batch_size == micro_batch x gradient_accumulation x world size "
        "(utils/deepspeed/deepspeed.py sets accumulated_gradient = train_batch // micro // world)",
        "choose micro_batch_per_gpu and the GPU count so that micro x GPUs divides the train batch",
    ),
    BatchRule(
        "whole optimizer steps per rollout",
        lambda t: (t.rollout_batch * t.samples) % t.train_batch == 0,
        lambda t: f"rollout {t.rollout_batch} x {t.samples} = {t.rollout_batch * t.samples} samples vs train "
        f"batch {t.train_batch}",
        "utils/loss_utils.iter_grad_accum_global_norm: a rollout that is not a multiple of the train batch ends in "
        "a partial accumulation window, whose gradients carry into the next rollout's first step",
        "make mini_batch_prompts (or prompts_per_rollout / updates_per_rollout) divide prompts_per_rollout",
    ),
)


@check("batch")
def check_batch(plan: RowPlan, ctx: Context) -> List[Result]:
    t = plan.train
    if t is None or t.runner != "openrlhf":
        return []
    broken = [rule for rule in BATCH_RULES if not rule.holds(t)]
    if not broken:
        return [
            Result(
                "batch",
                plan.name,
                OK,
                f"rollout {t.rollout_batch}x{t.samples}, train batch {t.train_batch} (micro {t.micro_train}), rollout "
                f"micro {t.micro_rollout}, {t.actor_gpus} GPUs, {t.vllm_engines} vLLM engines x TP {t.vllm_tp}",
            )
        ]
    return [
        Result("batch", plan.name, FAIL, f"{rule.name} fails: {rule.value(t)} ({rule.why})", rule.fix)
        for rule in broken
    ]


# One question whose right answer both DAPO rules accept (a final \boxed{} and an "Answer:" line).
KNOWN_PROMPT = "What is 6 times 7?"
KNOWN_LABEL = "42"
KNOWN_RIGHT = "6 * 7 = 42, so the answer is \\boxed{42}.\nAnswer: 42"
KNOWN_WRONG = "6 * 7 = 41, so the answer is \\boxed{41}.\nAnswer: 41"


def score_known_answers(path: str) -> Tuple[float, float]:
    """Load the reward file by path, as OpenRLHF does, and score the right and the wrong answer."""
    spec = importlib.util.spec_from_file_location(f"preflight_reward_{abs(hash(path))}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    scores = []
    for response in (KNOWN_RIGHT, KNOWN_WRONG):
        out = module.reward_func([KNOWN_PROMPT + response], [KNOWN_PROMPT], [KNOWN_LABEL])
        rewards = out["rewards"] if isinstance(out, Mapping) else out
        scores.append(float(rewards[0]))
    return scores[0], scores[1]


@check("reward")
def check_reward(plan: RowPlan, ctx: Context) -> List[Result]:
    if plan.train is None:
        return []
    if not plan.train.reward_files:
        return [Result("reward", plan.name, FAIL, "no --reward.remote_url", "set the recipe's reward_rule")]
    out = []
    for path in plan.train.reward_files:
        if path not in ctx._rewards:
            try:
                right, wrong = score_known_answers(path)
            except Exception as err:  # any failure to load or call it is the finding
                ctx._rewards[path] = (
                    FAIL,
                    f"{path} does not load or score: {type(err).__name__}: {err}",
                    "fix the reward file",
                )
            else:
                value = f"{Path(path).name}: right answer {right:+g}, wrong answer {wrong:+g} (label {KNOWN_LABEL})"
                if right > 0 and wrong <= 0:
                    ctx._rewards[path] = (OK, value, "")
                else:
                    ctx._rewards[path] = (
                        FAIL,
                        value + ": expected right > 0 and wrong <= 0",
                        "fix the reward rule (or the reward file named by reward_rule)",
                    )
        status, value, fix = ctx._rewards[path]
        out.append(Result("reward", plan.name, status, value, fix))
    return out


# Full test-set sizes, from the one manifest the tests and docker/prepare_context.sh check too (shared_data). The
# LiveCodeBench entry there is the 20-problem sample, so it is counted per release file below instead.
EXPECTED_ROWS: Dict[str, int] = {
    bench: shared_data.expected_rows(bench)
    for bench in ("aime24", "aime25", "amc23", "math500", "minerva_math", "olympiadbench", "ifeval")
}
# LiveCodeBench code_generation_lite release files: v1..v6 hold 400, 511, 612, 713, 880, 1055 problems
# cumulatively (LCB README, research/eval.md), so each file adds the difference.
LCB_FILE_ROWS: Dict[str, int] = {
    "test.jsonl": 400,
    "test2.jsonl": 111,
    "test3.jsonl": 101,
    "test4.jsonl": 101,
    "test5.jsonl": 167,
    "test6.jsonl": 175,
}


def local_source(folder: Path) -> Path:
    """The file the eval CLI reads from a benchmark's folder: test.jsonl, else its only *.jsonl."""
    if folder.is_file():
        return folder
    if (folder / "test.jsonl").is_file():
        return folder / "test.jsonl"
    files = sorted(folder.glob("*.jsonl"))
    if len(files) == 1:
        return files[0]
    raise FileNotFoundError(f"{folder}: no test.jsonl and not exactly one *.jsonl")


def lcb_expected(folder: Path, release: Optional[str]) -> Tuple[List[Path], int]:
    from openrlhf_steer_eval.data_code import DEFAULT_RELEASE, lcb_release_files

    names = lcb_release_files(release or DEFAULT_RELEASE)
    return [folder / n for n in names], sum(LCB_FILE_ROWS[n] for n in names)


def check_benchmark_data(bench: str, ev: EvalPlan) -> Tuple[str, str, str]:
    """(status, value, fix) for one benchmark of one eval call, resolved as the eval CLI resolves it."""
    source = ev.data.get(bench)
    if source is None and ev.data_dir:
        if not (Path(ev.data_dir) / bench).exists():
            return (
                FAIL,
                f"{bench}: {Path(ev.data_dir) / bench} is missing (the eval CLI would silently fall back to the hub)",
                f"copy the {bench} test set into {ev.data_dir}/{bench}/ or point --eval-data-dir at a folder "
                "that has it",
            )
        source = str(Path(ev.data_dir) / bench)
    if source is None and not ev.data_dir:
        return (
            WARN,
            "no --eval-data-dir (nor $OPENRLHF_STEER_DATA): the eval CLI loads every test set from the hub at eval "
            "time; not checked here",
            "pass --eval-data-dir DIR to check the local copies",
        )
    if source is None or not Path(source).exists():
        return (WARN, f"{bench}: loaded from the hub ({source}) at eval time, not checked here", "")
    path = Path(source)
    if bench == "livecodebench" and path.is_dir():
        files, expected = lcb_expected(path, ev.lcb_release)
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            return (FAIL, f"{bench}: {path} lacks {missing}", "add the code_generation_lite release files")
        found = sum(shared_data.count_rows(f) for f in files)
        where = f"{path}/{{{','.join(f.name for f in files)}}}"
    else:
        try:
            file = local_source(path)
        except FileNotFoundError as err:
            return (FAIL, f"{bench}: {err}", f"put the test set at {path}/test.jsonl")
        found, where = shared_data.count_rows(file), str(file)
        expected = EXPECTED_ROWS.get(bench)
    if expected is None:
        return (WARN, f"{bench}: {found} rows in {where}; no expected count is recorded", "add it to EXPECTED_ROWS")
    if found != expected:
        return (
            FAIL,
            f"{bench}: {found} rows in {where}, expected {expected}",
            f"replace {where} with the full {bench} test set ({expected} rows)",
        )
    return (OK, f"{bench}: {found} rows in {where}", "")


@check("eval_data")
def check_eval_data(plan: RowPlan, ctx: Context) -> List[Result]:
    out = []
    for ev in plan.evals:
        for bench in ev.benchmarks:
            key = json.dumps([bench, ev.data_dir, ev.data.get(bench), ev.lcb_release])
            if key not in ctx._counts:
                ctx._counts[key] = check_benchmark_data(bench, ev)
            status, value, fix = ctx._counts[key]
            out.append(Result("eval_data", plan.name, status, value, fix))
    return out


# --------------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------------
def run_checks(plans: Sequence[RowPlan], ctx: Optional[Context] = None) -> List[Result]:
    ctx = ctx or Context()
    results: List[Result] = []
    for plan in plans:
        for _, fn in CHECKS:
            results.extend(fn(plan, ctx))
    return results


def rows_text(rows: Sequence[str], all_rows: Sequence[str]) -> str:
    """``table/a, table/b`` as ``table: a, b``, or ``table (all N rows)`` when every row of the run is named."""
    by_table: Dict[str, List[str]] = {}
    for row in rows:
        table, _, name = row.partition("/")
        by_table.setdefault(table, []).append(name)
    parts = []
    for table, names in by_table.items():
        total = [r for r in all_rows if r.startswith(table + "/")]
        parts.append(
            f"{table} (all {len(names)} rows)" if len(names) == len(total) > 1 else f"{table}: {', '.join(names)}"
        )
    return "; ".join(parts)


def summary(results: Sequence[Result], rows: int) -> List[str]:
    """Failures and warnings, one line per finding with the rows it concerns, then one count line."""
    all_rows = list(dict.fromkeys(r.row for r in results))
    grouped: Dict[Tuple[str, str, str, str], List[str]] = {}
    for r in results:
        if r.status != OK:
            grouped.setdefault((r.status, r.check, r.value, r.fix), [])
            if r.row not in grouped[(r.status, r.check, r.value, r.fix)]:
                grouped[(r.status, r.check, r.value, r.fix)].append(r.row)
    lines = []
    for (status, name, value, fix), where in sorted(grouped.items(), key=lambda kv: (kv[0][0] != FAIL, kv[0][1])):
        lines.append(Result(name, rows_text(where, all_rows), status, value, fix).line())
    fails = sum(r.status == FAIL for r in results)
    warns = sum(r.status == WARN for r in results)
    checks = sorted({r.check for r in results})
    lines.append(
        f"[preflight] {rows} row(s), checks {', '.join(checks)}: {len(results) - fails - warns} passed, "
        f"{warns} warning(s), {fails} failed"
    )
    return lines


def enforce(results: Sequence[Result], rows: int, echo: Callable[[str], None] = print) -> None:
    """Print the summary; raise PreflightError naming every failure when one failed."""
    for line in summary(results, rows):
        echo(line)
    failed = [line for line in summary(results, rows) if line.startswith("[preflight] FAIL")]
    if failed:
        raise PreflightError(
            f"preflight failed ({len(failed)} finding(s)); nothing was started:\n  "
            + "\n  ".join(failed)
            + "\n(--skip-preflight runs anyway)"
        )
