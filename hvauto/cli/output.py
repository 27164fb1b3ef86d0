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

    def __str__(self) -> str:
        # Typer 0.24 converts an option's value with str() after its callback (_record_output) returns it.
        return self.value


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


#: Colour is allowed (root ``--no-color`` clears it); it is used only on a terminal and without ``NO_COLOR``.
COLOR = True
#: Words that mean good, bad or look-at-me, in tables and marks.
_GOOD = {"ok", "ready", "done", "moved", "yes", "running", "completed", "enabled"}
_BAD = {"x", "blocked", "failed", "error", "aborted", "unreachable", "no", "blocking", "interrupted"}
_WARN = {"?", "warning", "unknown", "skipped", "partial", "problems", "planned"}


def colored(stream: TextIO | None = None) -> bool:
    """Colour for this stream: allowed, a terminal, ``NO_COLOR`` unset (https://no-color.org), not a dumb terminal."""
    import os

    out = stream or sys.stdout
    return (COLOR and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
            and hasattr(out, "isatty") and out.isatty())


def paint(text: str, stream: TextIO | None = None) -> str:
    """``text`` in green, red or yellow when its first word is a state word and the stream takes colour."""
    if not colored(stream):
        return text
    word = text.strip().split(" ")[0].strip("[]:").lower() if text.strip() else ""
    code = "32" if word in _GOOD else "31" if word in _BAD else "33" if word in _WARN else ""
    return f"\033[{code}m{text}\033[0m" if code else text


#: The width of output that goes to no terminal.
UNBOUNDED = 10_000


def width() -> int:
    """The columns output may use: ``COLUMNS`` if set, else the terminal's; unbounded into a pipe or a file.

    Piped output (``| grep``, a cron mail, a log) keeps whole values; set ``COLUMNS`` to fit it anyway.
    """
    import os
    import shutil

    env = os.environ.get("COLUMNS", "")
    if env.isdigit() and int(env) > 0:
        return max(int(env), 40)
    if sys.stdout.isatty() or sys.stderr.isatty():
        return max(shutil.get_terminal_size((80, 24)).columns, 40)
    return UNBOUNDED


def shorten(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters: its head and tail around ``...`` (a path keeps its file name)."""
    if len(text) <= limit:
        return text
    if limit <= 3:
        return text[:limit]
    tail = (limit - 3) * 2 // 3
    return text[:limit - 3 - tail] + "..." + text[len(text) - tail:]


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], stream: TextIO | None = None) -> None:
    """Columns sized to the terminal: the widest cells are shortened (``...``) until a row fits; ``-o json`` has them whole."""
    # A cell is one line, whatever a host put in it (a newline would add a fake row).
    text_rows = [["" if c is None else escape_controls(str(c), lines=True) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in text_rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    room = width()
    floors = [max(len(h), 6) for h in headers]
    while sum(widths) + 2 * (len(widths) - 1) > room:
        i = max(range(len(widths)), key=lambda j: widths[j] - floors[j])
        if widths[i] <= floors[i]:
            break
        widths[i] -= 1
    out = stream or sys.stdout
    out.write("  ".join(shorten(h.upper(), w).ljust(w) for h, w in zip(headers, widths, strict=False)).rstrip() + "\n")
    for row in text_rows:
        cells = [shorten(c, w) for c, w in zip(row, widths, strict=False)]
        # Padding first, then colour: escape codes take no columns.
        line = "  ".join(paint(c, out) + " " * (w - len(c)) for c, w in zip(cells, widths, strict=False))
        out.write(line.rstrip() + "\n")


def kv(pairs: Iterable[tuple[str, Any]], stream: TextIO | None = None) -> None:
    """Key and value pairs; a long value wraps under itself to the terminal's width."""
    import textwrap

    items = [(k, "" if v is None else escape_controls(str(v), lines=True)) for k, v in pairs]
    keys = max((len(k) for k, _ in items), default=0)
    room = max(width() - keys - 2, 20)
    out = stream or sys.stdout
    for k, v in items:
        lines = textwrap.wrap(v, room, break_long_words=True, break_on_hyphens=False) or [""]
        out.write(f"{k.ljust(keys)}  {lines[0]}\n")
        for more in lines[1:]:
            out.write(f"{' ' * keys}  {more}\n")


def size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(n)  # pragma: no cover


def say(text: str, indent: str = "  ", rest: str = "    ", columns: int | None = None) -> None:
    """A line of text wrapped to ``width`` columns (80: what a terminal is sure to have)."""
    import textwrap

    sys.stdout.write("\n".join(textwrap.wrap(text, columns or width(), initial_indent=indent, subsequent_indent=rest,
                                            break_long_words=False, break_on_hyphens=False)) + "\n")


def problem(p: Any) -> None:
    """A problem and its fix, wrapped: ``  - message`` then ``    fix: ...``."""
    say(("" if p.blocking else "warning: ") + p.message, "  - ", "    ")
    if p.fix:
        say(f"fix: {p.fix}", "    ", "      ")


def note(text: str) -> None:
    sys.stderr.write(f"hvauto: {text}\n")
