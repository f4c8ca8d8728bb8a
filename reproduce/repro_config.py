"""Per-table reproduction configs: loading and validation.

A config file (``reproduce/configs/<table>.yaml``) holds one table of a paper, with every row the
paper prints, in the paper's order, and every number it prints for them. Three kinds:

* ``results`` (default): trained rows scored on benchmarks. ``columns`` are the paper's columns in
  its order: a ``benchmark`` column (scored by the eval CLI), a ``mean_of`` column (the paper's
  average of other columns) or a ``training_entropy`` column (the run's final training entropy).
  ``metrics`` are the numbers per cell (``avg@n``: mean accuracy over the n samples; ``pass@n``:
  unbiased pass@k with k = n). Each row's ``paper`` gives the printed value per column: a number
  for a one-metric table, a list (one value per metric) otherwise, ``null`` where the paper prints
  none (e.g. "N/A").
* ``entropy_correlation``: Spearman correlation between training entropy and each benchmark's
  metrics across trained runs (Pos-Adv Tables 1 and 4: the printed values are reproduced exactly by one point
  per run of Tables 2/3 and 5); rows are benchmarks.
* ``estimator``: entropy-change estimators against the measured change (STEER's Figure 2 table).

``extends: recipes/<paper>.yaml`` names the recipe shared by a paper's tables; the table's own
``recipe`` / ``eval`` / ``selection`` / ``data`` entries override the shared ones key by key. Every
recipe-like entry is ``{value, source}``: the source names the paper section, says "[assumed]"
where the text is silent, or "lost in the text" where the extraction dropped the value.

``readings`` hold the choices where the text and the authors' code (or two passages of the text) disagree:
each is ``{value: <chosen reading>, source: why, choices: {<reading>: {source, recipe: {...}, eval: {...}}}}``.
The chosen reading's entries fill the named sections (an entry the recipe or the table writes itself wins,
e.g. Table 4's extreme clip range), so the other reading is one switch away: its ``value`` in the file, or
``load_config(path, readings={name: reading})``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

KINDS = ("results", "entropy_correlation", "estimator")
SOURCED_SECTIONS = ("recipe", "eval", "selection", "data", "training_entropy", "estimator")
READING_SECTIONS = ("recipe", "eval", "selection", "data")
REQUIRED_TOP = {
    "results": ("table", "title", "paper", "columns", "metrics", "recipe", "eval", "selection", "rows"),
    "entropy_correlation": ("table", "title", "paper", "metrics", "recipe", "eval", "rows"),
    "estimator": ("table", "title", "paper", "columns", "estimator", "rows"),
}
METRICS = ("avg@n", "pass@n")
ROW_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")


class ConfigError(ValueError):
    """A config file is malformed; the message names the file, the field and the fix."""


@dataclass
class Sourced:
    value: Any
    source: str


@dataclass
class Column:
    key: str
    label: str
    benchmark: Optional[str] = None
    mean_of: List[str] = field(default_factory=list)
    training_entropy: bool = False
    precision: Optional[int] = None

    @property
    def kind(self) -> str:
        if self.benchmark:
            return "benchmark"
        return "mean" if self.mean_of else "training_entropy"


@dataclass
class Row:
    name: str
    label: str
    method: str
    options: Dict[str, Sourced] = field(default_factory=dict)
    overrides: Dict[str, Sourced] = field(default_factory=dict)
    # column key -> metric -> the printed number (None: the paper prints none)
    paper: Dict[str, Dict[str, Optional[float]]] = field(default_factory=dict)
    paper_note: str = ""
    group: str = ""
    printed_label: str = ""
    # Why the label is what it is, when the text lost it (Pos-Adv rows printed as "+ GRPO ()").
    label_inferred: str = ""
    # A published checkpoint evaluated as is (no training): base models, SimpleRL-Zoo, ...
    released_model: Optional[Sourced] = None

    @property
    def trains(self) -> bool:
        return self.released_model is None

    def option_values(self) -> Dict[str, Any]:
        return {k: v.value for k, v in self.options.items()}


@dataclass
class TableConfig:
    path: Path
    table: str
    title: str
    paper: Dict[str, Any]
    kind: str
    recipe: Dict[str, Sourced]
    eval: Dict[str, Sourced]
    selection: Dict[str, Sourced]
    rows: List[Row]
    columns: List[Column] = field(default_factory=list)
    metrics: List[str] = field(default_factory=list)
    precision: int = 1
    data: Dict[str, Sourced] = field(default_factory=dict)
    training_entropy: Dict[str, Sourced] = field(default_factory=dict)
    estimator: Dict[str, Sourced] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)
    # Rows of the analysis kinds (entropy_correlation, estimator), as written in the file.
    analysis_rows: List[Dict[str, Any]] = field(default_factory=list)
    # Reading name -> the chosen reading (value) and why (source); see the module docstring.
    readings: Dict[str, Sourced] = field(default_factory=dict)

    @property
    def benchmarks(self) -> List[str]:
        """Benchmarks the eval CLI scores, in column order (for analysis tables: the rows' benchmarks)."""
        if self.kind == "entropy_correlation":
            return [str(r["benchmark"]) for r in self.analysis_rows]
        return [c.benchmark for c in self.columns if c.benchmark]

    def column(self, key: str) -> Column:
        for c in self.columns:
            if c.key == key:
                return c
        raise ConfigError(f"{self.path}: no column {key!r}; columns are {[c.key for c in self.columns]}")

    def precision_of(self, column: Column) -> int:
        return self.precision if column.precision is None else column.precision

    def row(self, name: str) -> Row:
        for r in self.rows:
            if r.name == name:
                return r
        raise ConfigError(f"{self.path}: no row named {name!r}; rows are {[r.name for r in self.rows]}")

    def recipe_for(self, row: Row) -> Dict[str, Any]:
        """The row's effective recipe values (common recipe with the row's overrides applied)."""
        values = {k: v.value for k, v in self.recipe.items()}
        values.update({k: v.value for k, v in row.overrides.items()})
        return values

    def values(self, section: str) -> Dict[str, Any]:
        return {k: v.value for k, v in getattr(self, section).items()}


def _read(path: Path) -> Mapping[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; the tables are in reproduce/configs/")
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        data = yaml.safe_load(text)
    elif path.suffix == ".json":
        data = json.loads(text)
    else:
        raise ConfigError(f"{path}: unsupported config type {path.suffix!r}; use .yaml or .json")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return data


def _merge_base(raw: Mapping[str, Any], path: Path) -> Dict[str, Any]:
    """The table's own entries over those of the shared recipe it ``extends`` (section by section)."""
    merged = dict(raw)
    base_name = raw.get("extends")
    if not base_name:
        return merged
    base = _read(path.parent / str(base_name))
    for section in SOURCED_SECTIONS + ("paper", "readings"):
        if section in base or section in raw:
            combined = dict(base.get(section) or {})
            combined.update(raw.get(section) or {})
            merged[section] = combined
    merged["notes"] = list(base.get("notes") or []) + list(raw.get("notes") or [])
    return merged


def _sourced_section(raw: Any, where: str) -> Dict[str, Sourced]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a mapping of name -> {{value, source}}")
    out: Dict[str, Sourced] = {}
    for key, entry in raw.items():
        if not isinstance(entry, Mapping) or "value" not in entry or "source" not in entry:
            raise ConfigError(
                f"{where}.{key}: write it as {{value: ..., source: \"paper section\"}} "
                "(source: \"[assumed] why\" when the paper is silent)"
            )
        source = str(entry["source"]).strip()
        if not source:
            raise ConfigError(f"{where}.{key}: empty source; name the paper section or write \"[assumed] ...\"")
        out[str(key)] = Sourced(entry["value"], source)
    return out


def _columns(raw: Any, path: Path) -> List[Column]:
    cols: List[Column] = []
    for i, c in enumerate(raw or []):
        where = f"{path}: columns[{i}]"
        if not isinstance(c, Mapping) or "key" not in c or "label" not in c:
            raise ConfigError(f"{where}: write a column as {{key, label, benchmark | mean_of | training_entropy}}")
        kinds = [k for k in ("benchmark", "mean_of", "training_entropy") if c.get(k)]
        if len(kinds) != 1:
            raise ConfigError(f"{where}: give exactly one of benchmark, mean_of, training_entropy (got {kinds})")
        cols.append(
            Column(
                key=str(c["key"]),
                label=str(c["label"]),
                benchmark=c.get("benchmark"),
                mean_of=[str(k) for k in c.get("mean_of") or []],
                training_entropy=bool(c.get("training_entropy")),
                precision=c.get("precision"),
            )
        )
    keys = [c.key for c in cols]
    for c in cols:
        unknown = [k for k in c.mean_of if k not in keys]
        if unknown:
            raise ConfigError(f"{path}: column {c.key!r} averages unknown column(s) {unknown}")
    return cols


def _number(value: Any, where: str) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: must be a number or null (not printed), got {value!r}")
    return float(value)


def _paper_cells(
    raw: Any, columns: List[Column], metrics: List[str], where: str
) -> Dict[str, Dict[str, Optional[float]]]:
    raw = dict(raw or {})
    unknown = sorted(set(raw) - {c.key for c in columns})
    if unknown:
        raise ConfigError(f"{where}: unknown column(s) {unknown}; columns are {[c.key for c in columns]}")
    cells: Dict[str, Dict[str, Optional[float]]] = {}
    for col in columns:
        if col.key not in raw:
            raise ConfigError(
                f"{where}.{col.key}: missing; write the printed number, or null where the paper prints none"
            )
        value = raw[col.key]
        if col.training_entropy:
            cells[col.key] = {"entropy": _number(value, f"{where}.{col.key}")}
        elif len(metrics) == 1 and not isinstance(value, (list, tuple)):
            cells[col.key] = {metrics[0]: _number(value, f"{where}.{col.key}")}
        elif isinstance(value, (list, tuple)) and len(value) == len(metrics):
            cells[col.key] = {m: _number(v, f"{where}.{col.key}[{i}]") for i, (m, v) in enumerate(zip(metrics, value))}
        else:
            raise ConfigError(f"{where}.{col.key}: give one value per metric {metrics} as a list, got {value!r}")
    return cells


def _rows(raw: Any, columns: List[Column], metrics: List[str], path: Path) -> List[Row]:
    rows: List[Row] = []
    seen = set()
    for i, r in enumerate(raw or []):
        where = f"{path}: rows[{i}]"
        released = (
            _sourced_section({"released_model": r["released_model"]}, where)["released_model"]
            if "released_model" in r
            else None
        )
        for key in ("name", "label") + (() if released else ("method",)):
            if key not in r:
                raise ConfigError(f"{where}: missing {key!r}")
        if released and (r.get("options") or r.get("overrides", {}).keys() - {"model"}):
            raise ConfigError(f"{where}: a released_model row is evaluated as published; it takes no options/overrides")
        name = str(r["name"])
        if not ROW_NAME.match(name):
            raise ConfigError(
                f"{where}: row name {name!r} must match {ROW_NAME.pattern} (it names a folder and a --rows entry)"
            )
        if name in seen:
            raise ConfigError(f"{where}: duplicate row name {name!r}")
        seen.add(name)
        rows.append(
            Row(
                name=name,
                label=str(r["label"]),
                method=str(r.get("method", "released")),
                options=_sourced_section(r.get("options"), f"{where}.options"),
                overrides=_sourced_section(r.get("overrides"), f"{where}.overrides"),
                paper=_paper_cells(r.get("paper"), columns, metrics, f"{where}.paper"),
                paper_note=str(r.get("paper_note", "")),
                group=str(r.get("group") or ""),
                printed_label=str(r.get("printed_label", "")),
                label_inferred=str(r.get("label_inferred", "")),
                released_model=released,
            )
        )
    if not rows:
        raise ConfigError(f"{path}: a table needs at least one row")
    return rows


def _apply_readings(raw: Dict[str, Any], path: Path, chosen: Optional[Mapping[str, str]] = None) -> Dict[str, Sourced]:
    """Fill ``raw``'s sections with each reading's chosen entries (entries written explicitly win); return
    reading name -> {value: the chosen reading, source: why}."""
    readings = raw.get("readings") or {}
    if not isinstance(readings, Mapping):
        raise ConfigError(f"{path}: readings must be a mapping of name -> {{value, source, choices}}")
    chosen = dict(chosen or {})
    unknown = sorted(set(chosen) - set(readings))
    if unknown:
        raise ConfigError(f"{path}: unknown reading(s) {unknown}; the config has {sorted(readings)}")
    out: Dict[str, Sourced] = {}
    for name, entry in readings.items():
        where = f"{path}: readings.{name}"
        if not isinstance(entry, Mapping) or not {"value", "source", "choices"} <= set(entry):
            raise ConfigError(f"{where}: write it as {{value: <reading>, source: why, choices: {{<reading>: ...}}}}")
        choices = entry["choices"]
        value = str(chosen.get(name, entry["value"]))
        if not isinstance(choices, Mapping) or value not in choices:
            raise ConfigError(f"{where}: reading {value!r} is not one of its choices {sorted(choices or {})}")
        choice = choices[value] or {}
        source = str(choice.get("source", "")).strip()
        if not source:
            raise ConfigError(f"{where}.choices.{value}: no source; cite the section or the code it follows")
        bad = sorted(set(choice) - set(READING_SECTIONS) - {"source"})
        if bad:
            raise ConfigError(f"{where}.choices.{value}: unknown section(s) {bad}; use {list(READING_SECTIONS)}")
        for section in READING_SECTIONS:
            values = choice.get(section) or {}
            target = dict(raw.get(section) or {})
            for key, v in values.items():
                target.setdefault(key, {"value": v, "source": f"reading {name}={value}: {source}"})
            if values:
                raw[section] = target
        out[str(name)] = Sourced(value, str(entry["source"]).strip())
    return out


def load_config(path: "str | Path", readings: Optional[Mapping[str, str]] = None) -> TableConfig:
    """The table at ``path``; ``readings`` picks another reading than the file's (``{name: reading}``)."""
    path = Path(path)
    raw = _merge_base(_read(path), path)
    chosen_readings = _apply_readings(raw, path, readings)
    kind = str(raw.get("kind", "results"))
    if kind not in KINDS:
        raise ConfigError(f"{path}: kind {kind!r} is not one of {KINDS}")
    missing = [k for k in REQUIRED_TOP[kind] if k not in raw]
    if missing:
        raise ConfigError(f"{path}: missing top-level key(s) {missing}")
    metrics = [str(m) for m in raw.get("metrics") or []]
    bad = [m for m in metrics if m not in METRICS]
    if bad:
        raise ConfigError(f"{path}: metrics {bad} unknown; use {list(METRICS)}")
    columns = _columns(raw.get("columns"), path) if kind == "results" else []
    rows = _rows(raw["rows"], columns, metrics, path) if kind == "results" else []
    analysis_rows = [] if kind == "results" else [dict(r) for r in raw["rows"]]
    return TableConfig(
        path=path,
        table=str(raw["table"]),
        title=str(raw["title"]),
        paper=dict(raw["paper"]),
        kind=kind,
        recipe=_sourced_section(raw.get("recipe"), f"{path}: recipe"),
        eval=_sourced_section(raw.get("eval"), f"{path}: eval"),
        selection=_sourced_section(raw.get("selection"), f"{path}: selection"),
        data=_sourced_section(raw.get("data"), f"{path}: data"),
        training_entropy=_sourced_section(raw.get("training_entropy"), f"{path}: training_entropy"),
        estimator=_sourced_section(raw.get("estimator"), f"{path}: estimator"),
        rows=rows,
        columns=columns,
        metrics=metrics,
        precision=int(raw.get("precision", 1)),
        notes=list(raw.get("notes") or []),
        analysis_rows=analysis_rows,
        readings=chosen_readings,
    )


def select_rows(config: TableConfig, names: Optional[Sequence[str]]) -> List[Row]:
    """Rows named in ``names`` (config order kept), or all rows when ``names`` is empty."""
    if not names:
        return list(config.rows)
    wanted = [n.strip() for n in names if n.strip()]
    known = {r.name for r in config.rows}
    bad = [n for n in wanted if n not in known]
    if bad:
        raise ConfigError(
            f"--rows: unknown row(s) {bad} in table {config.table}; choose from {[r.name for r in config.rows]}"
        )
    return [r for r in config.rows if r.name in wanted]
