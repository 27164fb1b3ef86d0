"""Text that can travel, and files that can be read: the input checks every entry point shares.

Every value hvauto sends is UTF-8, so a string that cannot be is refused at input.

Python turns an argument or a file name that is not valid UTF-8 into lone surrogates
(``surrogateescape``: the byte 0xff becomes U+DCFF). No encoder can send those: over PSRP they
became an invalid XML character reference, the service dropped the connection, and the retries
ended "unreachable". They are refused where they enter, with the byte that is wrong (exit 2).

:func:`read_file` is how every input file is read (runbooks, vars files, fabric specs,
inventories, the user's config.toml): a regular file of at most :data:`MAX_BYTES`, UTF-8.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Mapping
from typing import Any

from hvauto.errors import ValidationError

#: The largest input file hvauto reads (1 MiB: the largest shipped runbook is a few KiB).
MAX_BYTES = 1024 * 1024
#: The deepest nesting of lists and mappings in one YAML document (or a TOML file).
MAX_DEPTH = 64



def not_utf8(text: str) -> str | None:
    """Why ``text`` cannot be sent as UTF-8 (the first bad byte or code point), or None when it can."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start]
        code = ord(bad)
        if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the original byte
            return f"byte 0x{code - 0xDC00:02x} at position {exc.start} is not valid UTF-8"
        return f"U+{code:04X} at position {exc.start} is a lone surrogate, not a character"
    return None


def shown(text: str) -> str:
    """``text`` with what cannot be printed escaped (a bad byte as \\xff)."""
    def one(ch: str) -> str:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            return f"\\x{code - 0xDC00:02x}"
        return f"\\u{code:04x}" if 0xD800 <= code <= 0xDFFF else ch

    return "".join(one(ch) for ch in text) if not_utf8(text) else text


def value_problems(value: Any, where: str) -> list[str]:
    """Every string inside ``value`` (keys too) that cannot be sent, as ``WHERE: reason``."""
    problems: list[str] = []

    def walk(v: Any, at: str) -> None:
        if isinstance(v, str):
            why = not_utf8(v)
            if why:
                problems.append(f"{at} {shown(v)!r}: {why}")
        elif isinstance(v, Mapping):
            for k, item in v.items():
                walk(k, f"{at} key")
                walk(item, f"{at}.{k}" if isinstance(k, str) and not not_utf8(k) else at)
        elif isinstance(v, (list, tuple)):
            for i, item in enumerate(v):
                walk(item, f"{at}[{i}]")

    walk(value, where)
    return problems


def argv_problems(argv: Iterable[str]) -> list[str]:
    """The command-line arguments that are not valid UTF-8, each by its position."""
    return [p for i, a in enumerate(argv, 1) for p in value_problems(a, f"argument {i}")]


def read_file(path: str | os.PathLike[str], *, what: str, limit: int = MAX_BYTES) -> str:
    """A regular UTF-8 file of at most ``limit`` bytes, as text; anything else is one ValidationError.

    The file is opened without blocking and checked after it is open (a FIFO or a device is refused
    before a byte is read, and a file swapped after a check is still the one read).
    """
    where = os.fspath(path)
    try:
        fd = os.open(where, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise ValidationError([f"{where}: cannot read: {exc.strerror or exc}"], what=what) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = ("a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else
                    "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file")
            raise ValidationError([f"{where}: cannot read: {kind}, not a regular file"], what=what)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(65536, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    except OSError as exc:
        raise ValidationError([f"{where}: cannot read: {exc.strerror or exc}"], what=what) from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ValidationError([f"{where}: larger than {limit // 1024} KiB, the most hvauto reads as a {what}"],
                              what=what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ValidationError([f"{where}:{line}: cannot read: not UTF-8 text (byte 0x{data[exc.start]:02x})"],
                              what=what) from None


#: What a terminal would act on rather than show: C0 and C1 controls (but newline and tab), DEL, the
#: line and paragraph separators, and the bidirectional overrides that reorder what is shown.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


_CELL_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def escape_controls(text: str, *, lines: bool = False) -> str:
    """``text`` as a terminal may print it: each control character as ``\\xHH`` (or ``\\uHHHH``).

    ``lines``: a newline and a tab too (a table cell or a value on one line, which must stay one line).
    """
    if not lines:
        text = text.replace("\r\n", "\n")  # a Windows line end is a line end; a lone CR would overwrite the line
    return (_CELL_CONTROLS if lines else _CONTROLS).sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                         else f"\\u{ord(m.group()):04x}", text)


class SafeStream:
    """A text stream that shows control characters instead of passing them to the terminal.

    Everything hvauto prints for people goes through one (a VM named ``"vm02\\x1b[2J..."`` must not
    clear the screen or add a fake row); JSON lines are unchanged by it (``json.dumps`` already writes
    controls as ``\\u001b``). hvauto's own carriage return (a progress bar redrawn in place) is written
    with :meth:`write_raw`.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(escape_controls(text))
        return len(text)

    def write_raw(self, text: str) -> int:
        return int(self._stream.write(text) or 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
