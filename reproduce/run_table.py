#!/usr/bin/env python
"""Reproduce one paper table: train every row, select its checkpoint, evaluate it, assemble the table.

    python reproduce/run_table.py --config reproduce/configs/<table>.yaml [--rows a,b] [--dry-run]
        [--gpus 8] [--nodes 1] [--vllm-tp 1] [--no-colocate] [--output-dir DIR] [--smoke] [--force]
        [--skip-preflight]

Before anything runs (``--dry-run`` included), reproduce/preflight.py checks every selected row: context window,
chat template, tokenizer vs embedding, OpenRLHF's batch arithmetic, the reward file on a known answer and the eval
data's row counts; a failure names the row, the value and the fix and exits 2 before Ray, vLLM or DeepSpeed start.

Per row, in ``<output-dir>/rows/<row>/``:
  1. data    the table's prompt dataset (reproduce/prepare_data.py; shared by rows, resumable)
  2. train   ``python -m openrlhf_steer.apps.train ...`` (OpenRLHF 0.11.2 flags + --entropy.*); ``train.done.json``
  3. select  the checkpoint rule of the table (reproduce/repro_selection.py); ``selection.json``
  4. eval    ``openrlhf-steer-eval`` on the chosen checkpoint with the paper's sampling; ``eval/results.json``
  5. result  ``result.json``: the row is done. Re-running skips done rows and finished stages (resume).
Finally ``<output-dir>/<table>.md`` / ``.json``: ours / paper / difference per benchmark.

``--dry-run`` prints every command (prefixed ``[data]``, ``[train]``, ``[select]``, ``[eval]``) and runs
nothing. ``--smoke`` runs the same pipeline on CPU: a tiny model, a few training steps through OpenRLHF's
own ``train()`` (local Ray, DeepSpeed on gloo; only the vLLM engines are stand-ins, see repro_smoke.py),
the real eval CLI with the HF backend on a few problems, and the real table assembly.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

import preflight  # noqa: E402
import repro_pipeline as pipeline  # noqa: E402
from repro_config import ConfigError, Row, TableConfig, load_config, select_rows  # noqa: E402
from repro_selection import SELECTION_POLICIES, validate_policy  # noqa: E402
from assemble_table import assemble  # noqa: E402
from repro_entropy import DEFAULT_METRIC, final_training_entropy  # noqa: E402

from openrlhf_steer.shared_data import locate_data_dir  # noqa: E402
from openrlhf_steer_eval.atomic_io import atomic_write_text  # noqa: E402


def atomic_write_json(path: Path, payload: Any) -> None:
    atomic_write_text(path, json.dumps(payload, indent=2) + "\n")


def default_data_dir() -> Path:
    """$OPENRLHF_STEER_DATA, else ../shared/data, else the copy committed in tests/data/shared (shared_data)."""
    return locate_data_dir()


def parse_readings(items: Sequence[str]) -> Dict[str, str]:
    """``--reading NAME=CHOICE`` pairs as a mapping; load_config names the known readings when one is wrong."""
    chosen: Dict[str, str] = {}
    for item in items:
        name, sep, choice = item.partition("=")
        if not sep or not name.strip() or not choice.strip():
            raise ConfigError(f"--reading {item!r}: write NAME=CHOICE, e.g. --reading baseline_clip=authors_scripts")
        chosen[name.strip()] = choice.strip()
    return chosen


# --------------------------------------------------------------------------------------------------
# What a row runs: the paper's recipe (GPU) or its CPU smoke version
# --------------------------------------------------------------------------------------------------
class PaperRun:
    """The table's recipe, sampling, benchmarks and selection as configured (the GPU run)."""

    smoke = False
    extends_context = True  # builds the extended-context model copy a recipe asks for

    def layout(self, layout: "pipeline.Layout") -> "pipeline.Layout":
        return layout

    def recipe(self, recipe: Dict[str, Any]) -> Dict[str, Any]:
        return recipe

    def data_request(self, data: Dict[str, Any]) -> Dict[str, Any]:
        return data

    def data_command(self, cmd: List[str]) -> List[str]:
        return cmd

    def eval_sampling(self, sampling: Dict[str, Any]) -> Dict[str, Any]:
        return sampling

    def eval_backend(self, backend: str) -> str:
        return backend

    def eval_extra(self, eval_data_dir: Optional[Path], benchmarks: Sequence[str]) -> Dict[str, Any]:
        return pipeline.eval_data_args(eval_data_dir, benchmarks)

    def benchmarks(self, benchmarks: Sequence[str]) -> List[str]:
        return list(benchmarks)

    def selection(self, selection: Dict[str, Any]) -> Dict[str, Any]:
        return selection

    def released_model(self, row: Row) -> Path:
        return Path(str(row.released_model.value))


class SmokeRun(PaperRun):
    """--smoke: the same stages on CPU (reproduce/repro_smoke.py): a tiny model and its own window, a few
    prompts and steps, the HF eval backend on a few problems of the shared test data."""

    smoke = True
    extends_context = False  # smoke lengths fit the tiny model's own window

    def __init__(self, setup):
        self.setup = setup

    def layout(self, layout):
        return self.setup.layout()

    def recipe(self, recipe):
        return self.setup.recipe(recipe)

    def data_request(self, data):
        return self.setup.data_request(data)

    def data_command(self, cmd):
        return cmd + ["--limit", str(self.setup.train_prompts)]

    def eval_sampling(self, sampling):
        return self.setup.eval_sampling(sampling)

    def eval_backend(self, backend):
        return "hf"

    def eval_extra(self, eval_data_dir, benchmarks):
        return self.setup.eval_extra(benchmarks)

    def benchmarks(self, benchmarks):
        return self.setup.benchmarks(benchmarks)

    def selection(self, selection):
        return self.setup.selection(selection)

    def released_model(self, row):
        return self.setup.model_path


# --------------------------------------------------------------------------------------------------
# Executors: how a command is carried out, and what a row runs (--dry-run and --smoke pick one)
# --------------------------------------------------------------------------------------------------
class Executor:
    """Runs the pipeline's commands as subprocesses; output goes to a log file and, unless quiet, the console.
    ``dry``: print every command and run nothing."""

    dry = False

    def __init__(self, echo=print, quiet: bool = False, dry: Optional[bool] = None):
        self.echo = echo
        self.quiet = quiet
        if dry is not None:
            self.dry = dry

    def row_run(self, out: Path, args: argparse.Namespace) -> PaperRun:
        """What the rows of a table written to ``out`` run: the paper's recipe."""
        return PaperRun()

    def run(self, stage: str, cmd: Sequence[str], log_path: Path, env: Optional[Mapping[str, str]] = None) -> None:
        self.echo(f"[{stage}] {pipeline.shell_join(cmd)}")
        if self.dry:
            return
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(f"\n$ {pipeline.shell_join(cmd)}\n")
            log.flush()
            proc = subprocess.Popen(
                list(cmd),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=str(HERE.parent),
                env=None if env is None else dict(env),
                text=True,
                errors="replace",
                bufsize=1,
            )
            try:
                for line in proc.stdout:  # type: ignore[union-attr]
                    log.write(line)
                    if not self.quiet:
                        sys.stdout.write(line)
                code = proc.wait()
            except BaseException:  # Ctrl-C or an error here: do not leave the training job running
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                raise
        if code != 0:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"[{stage}] command failed with exit code {code}; log: {log_path}\n{tail}")

    def train(self, cmd: Sequence[str], row_dir: Path) -> None:
        self.run("train", cmd, row_dir / "train.log")


class DryRunExecutor(Executor):
    dry = True


class RecordingExecutor(DryRunExecutor):
    """A dry run that prints nothing and keeps every command: the preflight reads what each row would run."""

    def __init__(self):
        super().__init__(echo=lambda *_: None)
        self.commands: List[tuple] = []

    def run(self, stage: str, cmd: Sequence[str], log_path: Path, env: Optional[Mapping[str, str]] = None) -> None:
        self.commands.append((stage, [str(c) for c in cmd]))


class SmokeExecutor(Executor):
    """--smoke: the rows run their CPU version (:class:`SmokeRun`); the training command runs through
    OpenRLHF's ``train()`` on CPU with a stand-in rollout engine (reproduce/repro_smoke.py); everything
    else runs as in a GPU run. With ``dry``, prints the CPU pipeline and creates nothing."""

    def row_run(self, out: Path, args: argparse.Namespace) -> SmokeRun:
        import repro_smoke

        setup = repro_smoke.SmokeSetup(
            out / "smoke", data_dir=Path(args.data_dir or default_data_dir()), steps=args.smoke_steps
        )
        if not self.dry:
            setup.materialize()
        return SmokeRun(setup)

    def train(self, cmd: Sequence[str], row_dir: Path) -> None:
        if self.dry:
            return super().train(cmd, row_dir)
        import repro_smoke

        run = repro_smoke.OpenRLHFSmokeRun(cmd, row_dir)
        self.echo(f"[train] {pipeline.shell_join(cmd)}")
        self.echo("[train] --smoke: running the command above through OpenRLHF's train() on CPU")
        run.write_plan()
        self.run("train", run.command(), row_dir / "train.log", env=run.env())
        run.check(row_dir / "train.log")


def make_executor(args: argparse.Namespace) -> Executor:
    """--smoke picks the smoke executor, --dry-run makes either print only."""
    return (SmokeExecutor if args.smoke else Executor)(quiet=args.quiet, dry=args.dry_run)


# --------------------------------------------------------------------------------------------------
# The table runner
# --------------------------------------------------------------------------------------------------
class TableRunner:
    def __init__(self, config: TableConfig, args: argparse.Namespace, executor: Executor):
        self.config = config
        self.args = args
        self.ex = executor
        self.out = Path(args.output_dir or Path("runs") / "reproduce" / config.table).resolve()
        self.layout = pipeline.Layout(
            nodes=args.nodes,
            gpus_per_node=args.gpus,
            vllm_tp=args.vllm_tp,
            colocate=not args.no_colocate,
            vllm_gpu_memory_utilization=args.vllm_mem,
        )
        self.layout.validate()
        validate_policy(config.values("selection"))
        data_dir = args.eval_data_dir or os.environ.get("OPENRLHF_STEER_DATA")
        self.eval_data_dir = Path(data_dir) if data_dir else None  # None: the eval CLI loads the hub datasets
        self.rows_run = executor.row_run(self.out, args)  # the paper's recipe, or its CPU smoke version
        self.layout = self.rows_run.layout(self.layout)

    # -- helpers ------------------------------------------------------------------------------
    def recipe(self, row: Row) -> Dict[str, Any]:
        recipe = self.config.recipe_for(row)
        n_prompts = recipe.get("subset_size") or self.config.values("data").get("expected_prompts")
        if recipe.get("max_rollout_steps") is not None:
            if not n_prompts:
                raise ConfigError(
                    f"{self.config.path}: max_rollout_steps needs data.expected_prompts (the prompt count)"
                )
            recipe = pipeline.rollout_cap(recipe, int(n_prompts))
        return self.rows_run.recipe(recipe)

    def eval_sampling(self) -> Dict[str, Any]:
        return self.rows_run.eval_sampling(self.config.values("eval"))

    def eval_backend(self) -> str:
        return self.rows_run.eval_backend(self.args.eval_backend)

    def eval_extra(self, benchmarks: Sequence[str]) -> Dict[str, Any]:
        return self.rows_run.eval_extra(self.eval_data_dir, benchmarks)

    def benchmarks(self) -> List[str]:
        return self.rows_run.benchmarks(self.config.benchmarks)

    # -- stages -------------------------------------------------------------------------------
    def prepare_data(self, recipe: Mapping[str, Any]) -> Path:
        data = dict(self.config.values("data"))
        for key in ("subset", "subset_size", "subset_clusters", "subset_seed"):
            if key in recipe:
                data[key] = recipe[key]
        if self.args.train_data:
            data["source"] = self.args.train_data
        data = self.rows_run.data_request(data)
        key = (
            "dapo17k"
            if not data.get("subset")
            else f"{data['subset']}{data['subset_size']}_seed{data.get('subset_seed', 0)}"
        )
        out = self.out / "data" / f"{key}.jsonl"
        cmd = self.rows_run.data_command(pipeline.prepare_data_command(data, out))
        if self.ex.dry or not out.is_file():
            self.ex.run("data", cmd, self.out / "data" / "prepare.log")
        return out

    def context_model(self, recipe: Mapping[str, Any], model: str) -> Optional[Path]:
        """The extended-context copy of ``model`` when the recipe sets ``max_position_embeddings`` (built once)."""
        tokens = pipeline.context_override(recipe)
        if tokens is None or not self.rows_run.extends_context:
            return None
        model_dir = pipeline.context_model_dir(model, tokens, self.out / "models")
        if self.ex.dry or not pipeline.context_model_ready(model_dir, model, tokens):
            cmd = pipeline.prepare_model_command(model, tokens, model_dir)
            self.ex.run("model", cmd, self.out / "models" / "prepare.log")
        return model_dir

    def train(self, row: Row, row_dir: Path, recipe: Mapping[str, Any], data_path: Path) -> Path:
        ckpt_dir = row_dir / "ckpt"
        model_dir = self.context_model(recipe, str(recipe["model"]))
        if model_dir is not None:  # vLLM and DeepSpeed both load the copy with the larger context
            recipe = dict(recipe, model=str(model_dir))
        cmd = pipeline.train_command(
            recipe, row.method, row.option_values(), self.layout, data_path, ckpt_dir, row_dir / "tensorboard"
        )
        done = row_dir / "train.done.json"
        if done.is_file() and not self.ex.dry:
            self.ex.echo(f"[train] {row.name}: already trained ({done})")
            return ckpt_dir
        started = time.time()
        self.ex.train(cmd, row_dir)
        if not self.ex.dry:
            atomic_write_json(
                done, {"command": cmd, "seconds": round(time.time() - started, 1), "smoke": self.rows_run.smoke}
            )
        return ckpt_dir

    def run_eval(
        self,
        stage: str,
        model: Path,
        benches: Sequence[str],
        sampling: Mapping[str, Any],
        out: Path,
        log: Path,
        metrics: Sequence[str] = ("avg@n",),
    ) -> Dict[str, Dict[str, Any]]:
        """Evaluate ``model`` on ``benches`` (one eval-CLI call per sampling group); scores in %, resumable."""
        groups = pipeline.eval_groups(benches, sampling)
        scores: Dict[str, Dict[str, Any]] = {}
        for i, (group, group_sampling) in enumerate(groups):
            gdir = pipeline.group_dir(out, i, group_sampling, len(groups))
            if self.ex.dry or not pipeline.eval_done(gdir):
                cmd = pipeline.eval_command(
                    model, group, group_sampling, gdir, self.eval_backend(), self.eval_extra(group)
                )
                self.ex.run(stage, cmd, log)
            if not self.ex.dry:
                got = pipeline.read_eval_scores(
                    gdir, metrics, int(group_sampling["n"]), group, group_sampling.get("graders") or ()
                )
                got = pipeline.apply_ifeval_level(got, gdir, group_sampling)
                missing = [b for b in group if b not in got or any(m not in got[b] for m in metrics)]
                if missing:
                    raise RuntimeError(f"{gdir}/{pipeline.EVAL_RESULTS_FILE} has no {list(metrics)} for {missing}")
                scores.update(got)
        return scores

    def select(self, row: Row, row_dir: Path, ckpt_dir: Path) -> Path:
        """The table's selection rule (``repro_selection.SELECTION_POLICIES``) on the row's checkpoints;
        ``selection.json`` records it (resume)."""
        sel = self.config.values("selection")
        sel["max_step"] = self.config.recipe_for(row).get("max_rollout_steps")
        sel = self.rows_run.selection(sel)
        sel_path = row_dir / "selection.json"
        if sel_path.is_file() and not self.ex.dry:
            return Path(json.loads(sel_path.read_text())["checkpoint"])
        sampling = dict(self.eval_sampling())
        sampling.update({k: sel[k] for k in ("n", "k", "temperature", "top_p", "max_tokens") if k in sel})
        if "benchmarks" in sel:
            sel["benchmarks"] = self.rows_run.benchmarks(sel["benchmarks"])

        def score(step, checkpoint: Path) -> float:
            """Mean avg@n of ``checkpoint`` on the selection benchmarks (NaN in a dry run)."""
            out = row_dir / "select" / f"step{step}"
            per_bench = self.run_eval("select", checkpoint, sel["benchmarks"], sampling, out, row_dir / "select.log")
            if self.ex.dry:
                return float("nan")
            return sum(per_bench[b]["avg@n"] for b in sel["benchmarks"]) / len(sel["benchmarks"])

        rule = SELECTION_POLICIES[sel["policy"]]
        options = {"progress": lambda items: _progress(items, f"select {row.name}")} if sel["policy"] == "best" else {}
        try:
            record = rule(
                ckpt_dir,
                sel,
                score,
                dry=self.ex.dry,
                describe=lambda text: self.ex.echo(f"[select] {row.name}: {text}"),
                **options,
            )
        except FileNotFoundError as err:
            raise FileNotFoundError(f"{row.name}: {err}") from None
        if not self.ex.dry:
            atomic_write_json(sel_path, record)
        return Path(record["checkpoint"])

    def evaluate(self, row: Row, row_dir: Path, checkpoint: Path) -> Dict[str, Dict[str, Any]]:
        return self.run_eval(
            "eval",
            checkpoint,
            self.benchmarks(),
            self.eval_sampling(),
            row_dir / "eval",
            row_dir / "eval.log",
            self.config.metrics,
        )

    # -- driver -------------------------------------------------------------------------------
    def run_once(self, row: Row, row_dir: Path) -> Dict[str, Any]:
        if not row.trains:  # a published checkpoint: evaluate it as is
            model = self.rows_run.released_model(row)
            extended = self.context_model(self.config.recipe_for(row), str(model))
            model = extended or model  # same weights; the context the trained rows use
            return {"checkpoint": str(model), "scores": self.evaluate(row, row_dir, model)}
        recipe = self.recipe(row)
        data_path = self.prepare_data(recipe)
        ckpt_dir = self.train(row, row_dir, recipe, data_path)
        checkpoint = self.select(row, row_dir, ckpt_dir)
        return {
            "checkpoint": str(checkpoint),
            "scores": self.evaluate(row, row_dir, checkpoint),
            "recipe": recipe,
            "training_entropy": self.training_entropy(row, row_dir),
        }

    def training_entropy(self, row: Row, row_dir: Path) -> Optional[float]:
        """The final EMA-smoothed training entropy (tables with an Entropy column); None when not logged."""
        if not any(c.training_entropy for c in self.config.columns) or self.ex.dry:
            return None
        spec = self.config.values("training_entropy")
        return final_training_entropy(
            row_dir / "train.log",
            str(spec.get("metric", DEFAULT_METRIC)),
            float(spec.get("ema", 0.0)),
            self.config.recipe_for(row).get("max_rollout_steps"),
        )

    def run_row(self, row: Row) -> None:
        row_dir = self.out / "rows" / row.name
        result_path = row_dir / "result.json"
        if result_path.is_file() and not self.args.force and not self.ex.dry:
            self.ex.echo(f"[skip] {row.name}: done ({result_path})")
            return
        what = f"method {row.method}" if row.trains else f"released model {row.released_model.value}"
        self.ex.echo(f"== {self.config.table} / {row.name} ({row.label}): {what}")
        run = self.run_once(row, row_dir)
        if self.ex.dry:
            return
        atomic_write_json(
            result_path,
            {
                "row": row.name,
                "label": row.label,
                "method": row.method,
                "options": row.option_values(),
                "checkpoint": run["checkpoint"],
                "scores": run["scores"],
                "training_entropy": run.get("training_entropy"),
                "paper": row.paper,
                "smoke": self.rows_run.smoke,
                "recipe": run.get("recipe"),
            },
        )

    def run(self, rows: Sequence[Row]) -> Optional[Dict[str, Path]]:
        if self.args.force and not self.ex.dry:
            for row in rows:  # --force redoes selection, scoring and the result; checkpoints and generations stay
                row_dir = self.out / "rows" / row.name
                (row_dir / "result.json").unlink(missing_ok=True)
                for stale in (
                    list(row_dir.glob("**/selection.json"))
                    + list(row_dir.glob("**/eval/**/results.json"))
                    + list(row_dir.glob("**/select/**/results.json"))
                ):
                    stale.unlink()
        for row in _progress(rows, self.config.table, enabled=not self.ex.dry):
            self.run_row(row)
        if self.ex.dry:
            self.ex.echo(f"[table] {self.out / (self.config.table + '.md')} and .json (ours / paper / diff)")
            return None
        paths = assemble(self.config, self.out)
        self.ex.echo(f"[table] wrote {paths['markdown']} and {paths['json']}")
        return paths


def _progress(items, desc, enabled=True):
    try:
        from tqdm import tqdm

        return tqdm(items, desc=desc, leave=False, disable=not enabled or len(items) < 2)
    except ImportError:  # pragma: no cover
        return items


# --------------------------------------------------------------------------------------------------
# Preflight: every row's commands, recorded by a silent dry run, checked before anything starts
# --------------------------------------------------------------------------------------------------
def row_plan(table: str, row: Row, recipe: Mapping[str, Any], commands: Sequence[tuple]) -> "preflight.RowPlan":
    """A row's plan from the commands the runner would run (training, selection and final evaluation)."""
    train = [cmd for stage, cmd in commands if stage == "train"]
    evals = [cmd for stage, cmd in commands if stage in ("select", "eval")]
    model = str(recipe.get("model")) if row.trains else str(row.released_model.value)
    return preflight.RowPlan(
        table=table,
        row=row.name,
        model=model,
        train=preflight.train_plan_from_argv(train[0]) if train else None,
        evals=tuple(preflight.eval_plan_from_argv(cmd) for cmd in evals),
        prompt_budget=int(recipe["max_prompt_len"]) if recipe.get("max_prompt_len") is not None else None,
    )


def plan_rows(config: TableConfig, args: argparse.Namespace, rows: Sequence[Row]) -> List["preflight.RowPlan"]:
    recorder = RecordingExecutor()
    runner = TableRunner(config, args, recorder)
    plans = []
    for row in rows:
        recorder.commands = []
        runner.run_once(row, runner.out / "rows" / row.name)
        plans.append(row_plan(config.table, row, config.recipe_for(row), recorder.commands))
    return plans


def results_plans(config: TableConfig, args: argparse.Namespace) -> List["preflight.RowPlan"]:
    return plan_rows(config, args, select_rows(config, args.rows.split(",") if args.rows else []))


def correlation_plans(config: TableConfig, args: argparse.Namespace) -> List["preflight.RowPlan"]:
    """Pos-Adv Tables 1 and 4 train the rows of Tables 2, 3 and 5: check those rows."""
    import repro_correlation_table as corr

    refs = corr.run_refs(config)
    wanted = [r.strip() for r in (args.rows or "").split(",") if r.strip()]
    refs = [r for r in refs if not wanted or r.key in wanted]
    plans: List["preflight.RowPlan"] = []
    for table in dict.fromkeys(r.table for r in refs):
        src = corr.source_config(config, table)
        names = [r.row for r in refs if r.table == table]
        plans += plan_rows(src, args, [src.row(n) for n in names])
    return plans


def estimator_plans(config: TableConfig, args: argparse.Namespace) -> List["preflight.RowPlan"]:
    """STEER Figure 2 trains each model with its own GRPO loop (HF generate, no vLLM): context, template,
    vocabulary and reward apply; OpenRLHF's batch rules do not."""
    import repro_estimator_table as est

    recipe = config.values("recipe")
    prompt, response = int(recipe["max_prompt_len"]), int(recipe["max_response_len"])
    spec = est.EstimatorSpec.from_config(config)
    plans = []
    for model in est.selected_models(config, args.rows):
        train = preflight.TrainPlan(
            max_len=prompt + response,
            max_new_tokens=response,
            rollout_batch=spec.prompts_per_step,
            samples=spec.samples_per_prompt,
            train_batch=spec.mini_batch_prompts * spec.samples_per_prompt,
            micro_train=spec.micro_batch,
            micro_rollout=spec.micro_batch,
            actor_gpus=1,
            ring=1,
            ds_tp=1,
            vllm_engines=0,
            vllm_tp=1,
            colocate=False,
            async_train=False,
            apply_chat_template=spec.apply_chat_template,
            reward_files=(str(pipeline.reward_file(recipe)),),
            runner="estimator",
        )
        plans.append(preflight.RowPlan(config.table, model, model, train=train, prompt_budget=prompt))
    return plans


# config kind -> the rows the preflight checks
PLANNERS = {"results": results_plans, "entropy_correlation": correlation_plans, "estimator": estimator_plans}


def run_preflight(config: TableConfig, args: argparse.Namespace) -> None:
    """Check every row before anything starts; raise preflight.PreflightError on a failure."""
    if args.smoke:
        print("[preflight] skipped under --smoke: its rows run CPU stand-ins, not the GPU recipe")
        return
    if args.skip_preflight:
        print(
            "run_table: warning: --skip-preflight: the rows are not checked; a bad recipe fails only after Ray, "
            "vLLM and DeepSpeed have started",
            file=sys.stderr,
        )
        return
    plans = PLANNERS[config.kind](config, args)
    preflight.enforce(preflight.run_checks(plans), len(plans))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="reproduce/configs/<table>.yaml")
    p.add_argument("--rows", default="", help="comma-separated row names to run (default: all rows)")
    p.add_argument("--dry-run", action="store_true", help="print every command; run nothing")
    p.add_argument(
        "--smoke",
        action="store_true",
        help="CPU pipeline check: tiny model trained through OpenRLHF's train() (stand-in rollout engine from "
        "tests/support), few steps, few problems",
    )
    p.add_argument("--smoke-steps", type=int, default=2, help="rollout steps per row with --smoke (default 2)")
    p.add_argument("--gpus", type=int, default=8, help="GPUs per node (default 8, as in both papers)")
    p.add_argument(
        "--nodes", type=int, default=1, help="nodes (default 1); start a Ray cluster and set RAY_ADDRESS for >1"
    )
    p.add_argument("--vllm-tp", type=int, default=1, help="tensor-parallel size of each vLLM engine (default 1)")
    p.add_argument(
        "--vllm-mem", type=float, default=0.6, help="vLLM gpu_memory_utilization (default 0.6, STEER's value)"
    )
    p.add_argument("--no-colocate", action="store_true", help="do not share GPUs between training and vLLM")
    p.add_argument(
        "--eval-backend", default="vllm", choices=["vllm", "hf", "openai"], help="eval CLI backend (default vllm)"
    )
    p.add_argument(
        "--train-data",
        default=None,
        help="DAPO-Math-17k source: hub id or local .parquet/.jsonl (default: the config's)",
    )
    p.add_argument(
        "--eval-data-dir",
        default=None,
        help="local test sets for the eval CLI (one sub-folder per benchmark; default $OPENRLHF_STEER_DATA, "
        "set in the Docker image; unset: the eval CLI loads the hub datasets)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="eval data folder for --smoke (default $OPENRLHF_STEER_DATA, else ../shared/data, else the copy in "
        "tests/data/shared)",
    )
    p.add_argument("--output-dir", default=None, help="default runs/reproduce/<table>")
    p.add_argument(
        "--reading",
        action="append",
        default=[],
        metavar="NAME=CHOICE",
        help="another reading of an ambiguity than the config's default, e.g. baseline_clip=authors_scripts "
        "(repeatable; the readings and their choices: docs/reproduce.md, 'Readings chosen where the text is "
        "ambiguous')",
    )
    p.add_argument(
        "--skip-preflight",
        action="store_true",
        help="do not check the rows before starting (context, chat template, vocabulary, batch arithmetic, reward "
        "file, eval data; reproduce/preflight.py); prints a warning",
    )
    p.add_argument(
        "--force", action="store_true", help="redo selection, eval and result of the chosen rows (training is kept)"
    )
    p.add_argument(
        "--quiet", action="store_true", help="do not echo the commands' output (it is always in the row's *.log files)"
    )
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config, readings=parse_readings(args.reading))
        run_preflight(config, args)  # before anything runs, --dry-run included
        if config.kind != "results":  # the correlation and estimator tables have their own pipeline
            from repro_analyses import run_analysis

            return run_analysis(config, args)
        rows = select_rows(config, args.rows.split(",") if args.rows else [])
        TableRunner(config, args, make_executor(args)).run(rows)
    except (ConfigError, ValueError, FileNotFoundError) as err:
        print(f"run_table: error: {err}", file=sys.stderr)
        return 2
    except RuntimeError as err:  # a stage's command failed; its log is named in the message
        print(f"run_table: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
