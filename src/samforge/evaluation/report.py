"""Results on disk: long-format CSV, JSON summary and a self-contained HTML report.

Every file is written to a temporary file in its folder and renamed into place, so a run
killed mid-write leaves the previous version or nothing, never half a file.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ..files import write_bytes_atomically

RESULTS_CSV = "results.csv"
SUMMARY_JSON = "summary.json"
REPORT_HTML = "report.html"


def write_csv(path: Path, rows: Sequence[dict]) -> Path:
    """Long-format CSV; columns are the union of the rows' keys, in order of appearance."""
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return write_bytes_atomically(path, buffer.getvalue().encode())


# Columns read back as numbers; everything else stays text (a case called "007" must not
# become the integer 7, or a resumed run would not recognise it).
INT_COLUMNS = (
    "round",
    "severity",
    "class_id",
    "num_objects",
    "object",
    "voxels",
    "voxels_predicted",
    "prompt_slice",
    "slices_true",
    "slices_segmented",
)
FLOAT_COLUMNS = ("dice", "hd95", "nsd", "iou_threshold", "box_extension")


# The columns that name what a row measured: every resume key includes them.
ENTRY_COLUMNS = ("model", "dataset", "case")


def read_csv(path: Path) -> list[dict]:
    """Rows of a CSV written by :func:`write_csv` ([] when it does not exist), with the
    :data:`INT_COLUMNS` and :data:`FLOAT_COLUMNS` converted back to numbers.

    A row that does not read (a hand-edited Dice that is not a number) is corrupt: it and
    every row of the same model and case are left out, with a warning, so that a resumed
    run recomputes that case once instead of failing or keeping half of it.
    """
    path = Path(path)
    if not path.is_file():
        return []
    rows: list[dict] = []
    corrupt: dict[tuple[str, ...], str] = {}
    with path.open(newline="") as file:
        for line, row in enumerate(csv.DictReader(file), start=2):
            try:
                rows.append(_typed(row))
            except ValueError as error:
                corrupt.setdefault(_entry(row), f"line {line}: {error}")
    if not corrupt:
        return rows
    for entry, problem in corrupt.items():
        named = ", ".join(f"{c} {v}" for c, v in zip(ENTRY_COLUMNS, entry, strict=True) if v)
        warnings.warn(
            f"{path} {problem}; the results of {named} are corrupt and will be recomputed.",
            stacklevel=2,
        )
    return [row for row in rows if _entry(row) not in corrupt]


def _entry(row: dict) -> tuple[str, ...]:
    return tuple(str(row.get(column) or "") for column in ENTRY_COLUMNS)


def _typed(row: dict) -> dict:
    """``row`` with its numeric columns as numbers; raises ValueError naming the column."""
    for columns, kind in ((INT_COLUMNS, int), (FLOAT_COLUMNS, float)):
        for key in columns:
            if row.get(key) not in (None, ""):
                try:
                    row[key] = kind(row[key])
                except ValueError:
                    raise ValueError(f"{key} {row[key]!r} is not a number") from None
    if row.get("use_masks") in ("True", "False"):
        row["use_masks"] = row["use_masks"] == "True"
    return row


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN/inf
    return value


def write_json(path: Path, data: dict) -> Path:
    text = json.dumps(_json_safe(data), indent=2, sort_keys=False)
    return write_bytes_atomically(path, (text + "\n").encode())


def mean_by(rows: Iterable[dict], keys: Sequence[str], value: str = "dice") -> dict[tuple, float]:
    """Mean of ``value`` per combination of ``keys``."""
    groups: dict[tuple, list[float]] = defaultdict(list)
    for row in rows:
        groups[tuple(row[k] for k in keys)].append(float(row[value]))
    return {group: float(np.mean(values)) for group, values in groups.items()}


def image_level(rows: Iterable[dict], keys: Sequence[str]) -> list[dict]:
    """Per-image rows: Dice averaged over an image's classes for each ``keys`` + case + round.

    This is the protocol's unit: a dataset's figure is the mean over images of these.
    """
    group_keys = (*keys, "case", "round")
    return [
        dict(zip(group_keys, group, strict=True), dice=value)
        for group, value in mean_by(rows, group_keys).items()
    ]


def _html_table(rows: Sequence[dict]) -> str:
    if not rows:
        return "<p>(no rows)</p>"
    columns = list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(row.get(c, '')))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _figure_html(name: str, path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    caption = html.escape(name.replace("_", " "))
    return (
        f'<figure><img alt="{caption}" src="data:image/png;base64,{data}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 1200px; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
figure { display: inline-block; margin: 1em; } img { max-width: 100%; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
"""


def render_html(title: str, summary: dict, figures: dict[str, Path]) -> str:
    """One self-contained page: tables of the summary's list-valued entries, the figures
    (embedded as base64 PNG, so the file can be mailed alone) and the full summary JSON."""
    tables = "".join(
        f"<h2>{html.escape(key.replace('_', ' '))}</h2>{_html_table(value)}"
        for key, value in summary.items()
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value)
    )
    images = "".join(_figure_html(name, path) for name, path in figures.items())
    dump = html.escape(json.dumps(_json_safe(summary), indent=2))
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>{tables}"
        f"<h2>Figures</h2>{images}<h2>Summary</h2><pre>{dump}</pre></body></html>"
    )


def write_report(
    out_dir: Path, rows: list[dict], summary: dict, figures: dict[str, Path], title: str
) -> Path:
    """Write ``results.csv`` (long format), ``summary.json`` and ``report.html`` into
    ``out_dir``, each atomically; figures are embedded in the HTML. Returns the HTML path."""
    out_dir = Path(out_dir)
    write_csv(out_dir / RESULTS_CSV, rows)
    write_json(out_dir / SUMMARY_JSON, summary)
    page = render_html(title, summary, figures)
    return write_bytes_atomically(out_dir / REPORT_HTML, page.encode())
