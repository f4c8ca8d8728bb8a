"""Per-table reproduction configs: loading and validation.

A config file (``reproduce/configs/<table>.yaml``) holds one paper table:

* ``recipe``: the common training recipe. Every entry is ``{value: ..., source: "..."}`` where the
  source names the paper section or script the value comes from, or starts with ``[assumed]``.
* ``eval`` / ``selection``: sampling settings of the evaluation and the checkpoint-selection rule,
  same ``{value, source}`` form.
* ``rows``: one per table row: ``name`` (used by ``--rows``), ``label`` (as printed in the paper),
  ``method`` (a key of ``openrlhf_steer.methods``), ``options`` (method config fields, ``{value,
  source}``), ``overrides`` (recipe entries that differ for this row, ``{value, source}``) and
  ``paper`` (the paper's number per benchmark, or ``null`` where we could not find it).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

REQUIRED_TOP = ("table", "title", "paper", "benchmarks", "recipe", "eval", "selection", "rows")
ROW_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")


class ConfigError(ValueError):
    """A config file is malformed; the message names the file, the field and the fix."""


@dataclass
class Sourced:
    value: Any
    source: str


@dataclass
class Row:
    name: str
    label: str
    method: str
    options: Dict[str, Sourced] = field(default_factory=dict)
    overrides: Dict[str, Sourced] = field(default_factory=dict)
    paper: Dict[str, Optional[float]] = field(default_factory=dict)
    paper_source: str = ""
    note: str = ""
    # A published checkpoint evaluated as is (no training), e.g. SimpleRL-Zoo in STEER's main table.
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
    benchmarks: List[str]
    metric: str
    recipe: Dict[str, Sourced]
    eval: Dict[str, Sourced]
    selection: Dict[str, Sourced]
    rows: List[Row]
    data: Dict[str, Sourced] = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)
    # Benchmarks the "avg" column averages (the paper's in-domain average, say); default: all.
    average_benchmarks: List[str] = field(default_factory=list)

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


def _load_raw(path: Path) -> Mapping[str, Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as err:  # pragma: no cover
            raise ConfigError(f"{path}: reading YAML configs needs PyYAML (pip install PyYAML)") from err
        data = yaml.safe_load(text)
    elif path.suffix == ".json":
        data = json.loads(text)
    else:
        raise ConfigError(f"{path}: unsupported config type {path.suffix!r}; use .yaml or .json")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: the top level must be a mapping with keys {list(REQUIRED_TOP)}")
    return data


def _sourced_section(raw: Any, where: str) -> Dict[str, Sourced]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a mapping of name -> {{value, source}}")
    out: Dict[str, Sourced] = {}
    for key, entry in raw.items():
        if not isinstance(entry, Mapping) or "value" not in entry or "source" not in entry:
            raise ConfigError(
                f"{where}.{key}: write it as {{value: ..., source: \"paper section or script\"}} "
                "(use source: \"[assumed] why\" when neither the paper nor the scripts give it)"
            )
        source = str(entry["source"]).strip()
        if not source:
            raise ConfigError(f"{where}.{key}: empty source; name the paper section/script or write \"[assumed] ...\"")
        out[str(key)] = Sourced(entry["value"], source)
    return out


def load_config(path: "str | Path") -> TableConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; the tables are in reproduce/configs/")
    raw = _load_raw(path)
    missing = [k for k in REQUIRED_TOP if k not in raw]
    if missing:
        raise ConfigError(f"{path}: missing top-level key(s) {missing}")
    benchmarks = list(raw["benchmarks"])
    rows: List[Row] = []
    seen = set()
    for i, r in enumerate(raw["rows"]):
        where = f"{path}: rows[{i}]"
        released = _sourced_section({"released_model": r["released_model"]}, where)["released_model"] if "released_model" in r else None
        for key in ("name", "label") + (() if released else ("method",)):
            if key not in r:
                raise ConfigError(f"{where}: missing {key!r}")
        if released and (r.get("options") or r.get("overrides")):
            raise ConfigError(f"{where}: a released_model row is evaluated as published; it takes no options/overrides")
        name = str(r["name"])
        if not ROW_NAME.match(name):
            raise ConfigError(f"{where}: row name {name!r} must match {ROW_NAME.pattern} (it names a folder and a --rows entry)")
        if name in seen:
            raise ConfigError(f"{where}: duplicate row name {name!r}")
        seen.add(name)
        paper = dict(r.get("paper") or {})
        unknown = sorted(set(paper) - set(benchmarks) - {"avg"})
        if unknown:
            raise ConfigError(f"{where}.paper: benchmark(s) {unknown} are not in the table's benchmarks {benchmarks} (or 'avg')")
        for b, v in paper.items():
            if v is not None and not isinstance(v, (int, float)):
                raise ConfigError(f"{where}.paper.{b}: must be a number or null (not found), got {v!r}")
        rows.append(
            Row(
                name=name,
                label=str(r["label"]),
                method=str(r.get("method", "released")),
                options=_sourced_section(r.get("options"), f"{where}.options"),
                overrides=_sourced_section(r.get("overrides"), f"{where}.overrides"),
                paper={b: (None if v is None else float(v)) for b, v in paper.items()},
                paper_source=str(r.get("paper_source", raw.get("paper_numbers_source", ""))),
                note=str(r.get("note", "")),
                released_model=released,
            )
        )
    if not rows:
        raise ConfigError(f"{path}: a table needs at least one row")
    return TableConfig(
        path=path,
        table=str(raw["table"]),
        title=str(raw["title"]),
        paper=dict(raw["paper"]),
        benchmarks=benchmarks,
        metric=str(raw.get("metric", "avg@k")),
        recipe=_sourced_section(raw["recipe"], f"{path}: recipe"),
        eval=_sourced_section(raw["eval"], f"{path}: eval"),
        selection=_sourced_section(raw["selection"], f"{path}: selection"),
        data=_sourced_section(raw.get("data"), f"{path}: data"),
        rows=rows,
        notes=list(raw.get("notes", [])),
        average_benchmarks=_average_benchmarks(raw, benchmarks, path),
    )


def _average_benchmarks(raw: Mapping[str, Any], benchmarks: List[str], path: Path) -> List[str]:
    chosen = list(raw.get("average_benchmarks") or benchmarks)
    unknown = [b for b in chosen if b not in benchmarks]
    if unknown:
        raise ConfigError(f"{path}: average_benchmarks {unknown} are not in the table's benchmarks {benchmarks}")
    return chosen


def select_rows(config: TableConfig, names: Optional[Sequence[str]]) -> List[Row]:
    """Rows named in ``names`` (config order kept), or all rows when ``names`` is empty."""
    if not names:
        return list(config.rows)
    wanted = [n.strip() for n in names if n.strip()]
    known = {r.name for r in config.rows}
    bad = [n for n in wanted if n not in known]
    if bad:
        raise ConfigError(f"--rows: unknown row(s) {bad} in table {config.table}; choose from {[r.name for r in config.rows]}")
    return [r for r in config.rows if r.name in wanted]
