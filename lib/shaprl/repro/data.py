"""Committed data under ``data/``: one validated, versioned format for every table.

Every committed table is a CSV with a JSON description beside it (``x.csv`` + ``x.json``).
The JSON carries ``kind`` (which schema the CSV follows), ``schema_version`` (so a later
issue can add columns -- per-seed utilities, convergence sentinels, learning curves --
without breaking old readers: a reader refuses a version it does not know and says which
to use), the configuration that produced the numbers, and how to regenerate them.

:func:`read_table` declares both files as inputs of the running notebook
(:mod:`.inputs`), checks the header, every cell's type, the uniqueness of the key columns,
and raises :class:`DataFormatError` naming the file, the line, the column and the fix.
:func:`write_table` writes both files atomically (temporary file + rename).

Schemas defined here: ``curve`` (committed learning curves: ``run, update, metric, value``)
and the generic ``check``; the Action Shapley utility table is defined in
:mod:`shaprl.action_shapley.tables` with its extra checks (subset labels, coverage, traces).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .inputs import declare_input
from .paths import atomic_write_text


class DataFormatError(ValueError):
    """A committed table that does not follow its schema (names file, line, column, fix)."""


def fail(
    path: Path, line: int | None, column: str | None, problem: str, fix: str
) -> DataFormatError:
    where = str(path)
    if line is not None:
        where += f": line {line}"
    if column is not None:
        where += f", column '{column}'"
    return DataFormatError(f"{where}: {problem}. Fix: {fix}")


@dataclass(frozen=True)
class Column:
    """One column of a schema: ``type`` is ``int``, ``float``, ``bool`` or ``str``;
    ``empty`` allows an empty cell (read as NaN / None); ``since`` is the first schema version
    that has the column (a table of an older version is read without it)."""

    name: str
    type: str
    empty: bool = False
    since: int = 1


@dataclass(frozen=True)
class TableSchema:
    """The columns a CSV of ``kind`` must have (others are allowed and read as text), the
    columns whose combination must be unique, and the schema versions this code reads."""

    kind: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    versions: tuple[int, ...] = (1,)

    @property
    def current(self) -> int:
        return max(self.versions)


CURVE = TableSchema(
    "curve",
    (
        Column("run", "int"),
        Column("update", "int"),
        Column("metric", "str"),
        Column("value", "float", empty=True),
    ),
    key=("run", "update", "metric"),
)


def check_schema(*columns: Column, key: Sequence[str] = ()) -> TableSchema:
    """A schema for a committed check table (a measurement beside the main results)."""
    return TableSchema("check", tuple(columns), tuple(key))


def sidecar(path: str | Path) -> Path:
    """The JSON description beside a committed CSV."""
    return Path(path).with_suffix(".json")


def read_meta(path: str | Path, schema: TableSchema, fix: str) -> dict[str, Any]:
    """The JSON description of ``path``, checked for kind and schema version."""
    meta_path = sidecar(path)
    declare_input(meta_path)
    if not meta_path.exists():
        raise fail(
            meta_path, None, None, "missing (every committed table has a JSON beside it)", fix
        )
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as err:
        raise fail(
            meta_path, err.lineno, f"char {err.colno}", f"not valid JSON ({err.msg})", fix
        ) from None
    if not isinstance(meta, dict):
        raise fail(meta_path, 1, None, "expected a JSON object", fix)
    kind = meta.get("kind")
    if kind != schema.kind:
        raise fail(meta_path, None, "kind", f"expected {schema.kind!r}, got {kind!r}", fix)
    version = meta.get("schema_version")
    if not isinstance(version, int):
        raise fail(meta_path, None, "schema_version", f"expected an integer, got {version!r}", fix)
    if version > schema.current:
        raise fail(
            meta_path,
            None,
            "schema_version",
            f"version {version} is newer than this code reads ({', '.join(map(str, schema.versions))})",
            "update the repository (git pull) to a version that reads it",
        )
    if version not in schema.versions:
        raise fail(
            meta_path,
            None,
            "schema_version",
            f"version {version} is no longer read (this code reads {', '.join(map(str, schema.versions))})",
            fix,
        )
    return meta


def _parse(text: str, column: Column, path: Path, line: int, fix: str) -> Any:
    text = text.strip()
    if text == "":
        if column.empty:
            return float("nan") if column.type in ("float", "int") else None
        raise fail(path, line, column.name, "empty cell where a value is required", fix)
    if column.type == "str":
        return text
    if column.type == "bool":
        if text in ("True", "true", "1"):
            return True
        if text in ("False", "false", "0"):
            return False
        raise fail(path, line, column.name, f"expected True or False, got {text!r}", fix)
    try:
        value = float(text)
    except ValueError:
        raise fail(path, line, column.name, f"expected a number, got {text!r}", fix) from None
    if column.type == "int":
        if not value.is_integer():
            raise fail(path, line, column.name, f"expected an integer, got {text!r}", fix)
        return int(value)
    if not math.isfinite(value):
        raise fail(
            path, line, column.name, f"expected a finite number or an empty cell, got {text!r}", fix
        )
    return value


def read_table(path: str | Path, schema: TableSchema, fix: str) -> tuple[pd.DataFrame, dict]:
    """Read and validate a committed table and its JSON; ``fix`` is how to regenerate it.

    Every file read is declared as an input of the running notebook. Returns the frame
    (schema columns typed; other columns as text) and the JSON description.
    """
    path = Path(path)
    declare_input(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such committed table. Fix: {fix}")
    meta = read_meta(path, schema, fix)
    text = path.read_text()
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise fail(path, 1, "header", "empty file", fix)
    header = [h.strip() for h in rows[0]]
    version = meta["schema_version"]
    missing = [c.name for c in schema.columns if c.since <= version and c.name not in header]
    if missing:
        raise fail(path, 1, "header", f"missing column(s) {missing}; got {header}", fix)
    if len(set(header)) != len(header):
        raise fail(path, 1, "header", f"duplicated column names in {header}", fix)
    typed = {c.name: c for c in schema.columns}
    data: dict[str, list] = {h: [] for h in header}
    seen: dict[tuple, int] = {}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise fail(path, line, "row", f"expected {len(header)} fields, got {len(row)}", fix)
        values = {}
        for h, cell in zip(header, row, strict=True):
            values[h] = _parse(cell, typed[h], path, line, fix) if h in typed else cell
            data[h].append(values[h])
        if schema.key:
            k = tuple(values[c] for c in schema.key)
            if k in seen:
                shown = ", ".join(f"{c}={v}" for c, v in zip(schema.key, k, strict=True))
                raise fail(
                    path,
                    line,
                    schema.key[0],
                    f"duplicate row ({shown}) first seen on line {seen[k]}",
                    fix,
                )
            seen[k] = line
    frame = pd.DataFrame(data, columns=header)
    for c in schema.columns:
        if c.name not in frame.columns:
            continue
        if c.type == "int" and not c.empty:
            frame[c.name] = frame[c.name].astype("int64")
        elif c.type in ("float", "int"):
            frame[c.name] = frame[c.name].astype(float)
    return frame, meta


def write_table(
    frame: pd.DataFrame, path: str | Path, meta: dict[str, Any], schema: TableSchema
) -> Path:
    """Write ``frame`` and its JSON description atomically, stamped with kind and version."""
    path = Path(path)
    missing = [c.name for c in schema.columns if c.name not in frame.columns]
    if missing:
        raise ValueError(f"{path}: the {schema.kind} table lacks column(s) {missing}")
    atomic_write_text(path, frame.to_csv(index=False, float_format="%.10g"))
    full = {"kind": schema.kind, "schema_version": schema.current, **meta}
    atomic_write_text(sidecar(path), json.dumps(full, indent=2, default=str) + "\n")
    return path
