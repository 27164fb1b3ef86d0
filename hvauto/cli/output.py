"""Printing: tables for people, JSON for programs. Nothing here talks to a host."""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from hvauto.results import to_jsonable
from hvauto.text import escape_controls


class Output(str, enum.Enum):
    table = "table"
    json = "json"


def print_json(value: Any, stream: TextIO | None = None) -> None:
    """A whole JSON document, indented (a schema for editors; command output is :func:`emit` lines)."""
    (stream or sys.stdout).write(json.dumps(to_jsonable(value), indent=2, sort_keys=False) + "\n")


def emit(event: str, value: Any = None, stream: TextIO | None = None, **fields: Any) -> None:
    """One JSON line ``{"event": EVENT, ...}``: every ``-o json`` output is a stream of these."""
    data = to_jsonable(value) if value is not None else {}
    if not isinstance(data, dict):
        data = {"value": data}
    print_json_line({"event": event, **data, **to_jsonable(fields)}, stream)


def print_json_line(value: Any, stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    out.write(json.dumps(to_jsonable(value), separators=(",", ":")) + "\n")
    out.flush()


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], stream: TextIO | None = None) -> None:
    # A cell is one line, whatever a host put in it (a newline would add a fake row).
    text_rows = [["" if c is None else escape_controls(str(c), lines=True) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in text_rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    out = stream or sys.stdout
    out.write("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=False)).rstrip() + "\n")
    for row in text_rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() + "\n")


def kv(pairs: Iterable[tuple[str, Any]], stream: TextIO | None = None) -> None:
    items = [(k, "" if v is None else escape_controls(str(v), lines=True)) for k, v in pairs]
    width = max((len(k) for k, _ in items), default=0)
    out = stream or sys.stdout
    for k, v in items:
        out.write(f"{k.ljust(width)}  {v}\n")


def size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)  # pragma: no cover


def note(text: str) -> None:
    sys.stderr.write(f"hvauto: {text}\n")
