"""What the lab endpoint can tell about a script it is asked to run, without running PowerShell.

It cannot run PowerShell, so it recognises hvauto's rendered templates by their machine line
(``#hvauto template=NAME version=V sha256=HEX``, written by :mod:`hvauto.render`; the human
comment is never parsed); the lab then refuses a body that is not exactly what the renderer
produces for that template and version (:func:`verify`). The values come as data (PSRP parameters, or the base64 JSON envelope of
:meth:`Script.as_text`, matched against the fixed prologue with a strict pattern). The run
itself goes to :func:`hvauto.lab.transport.execute`, the same path as the in-process lab.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hvauto.errors import TemplateError
from hvauto.render import MACHINE_LINE, Renderer
from hvauto.script import ENVELOPE_PROLOGUE


def _prologue_pattern() -> re.Pattern[str]:
    head, rest = ENVELOPE_PROLOGUE.split("{envelope}")
    middle, tail = rest.split("{body}")

    def literal(text: str) -> str:
        return re.escape(text.replace("{{", "{").replace("}}", "}"))

    return re.compile(literal(head) + r"(?P<envelope>[A-Za-z0-9+/=]*)" + literal(middle) + r"(?P<body>.*)"
                      + literal(tail) + r"\Z", re.S)


_PROLOGUE = _prologue_pattern()


class NotATemplate(ValueError):
    """The script is not an hvauto template this endpoint can answer."""


@dataclass(frozen=True)
class TemplateRun:
    template: str
    version: str
    params: dict[str, Any]
    body: str = ""


def identify(body: str) -> tuple[str, str]:
    """(template name, version) from a rendered template's machine line."""
    m = MACHINE_LINE.match(body)
    if not m:
        raise NotATemplate("the script does not start with an hvauto machine line")
    return m.group("name"), m.group("version")


def verify(run: TemplateRun, renderer: Renderer) -> None:
    """Refuse a body that differs from what ``renderer`` produces for its template and version."""
    try:
        expected = renderer.body(run.template, run.version)
    except (TemplateError, KeyError):
        raise NotATemplate(f"no template {run.template!r} for version {run.version!r} is known here") from None
    if run.body.replace("\r\n", "\n").rstrip("\n") != expected.rstrip("\n"):
        raise NotATemplate(f"the body is not the rendered {run.template} for {run.version}")


def plain(value: Any) -> Any:
    """A deserialized PSRP value as plain Python (psrpcore hands out PSString, PSInt64, PSList ...)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return str(value)


def from_psrp(script: str, parameters: list[tuple[str | None, Any]]) -> TemplateRun:
    name, version = identify(script)
    params: dict[str, Any] = {}
    for pname, value in parameters:
        if not pname:
            raise NotATemplate("hvauto binds every value by name; a positional argument was sent")
        params[str(pname)] = plain(value)
    return TemplateRun(name, version, params, script)


def from_text(text: str) -> TemplateRun:
    """The self-contained form (``Script.as_text()``): the fixed prologue, the envelope, the body."""
    m = _PROLOGUE.match(text.replace("\r\n", "\n"))
    if not m:
        raise NotATemplate("the script is not in hvauto's self-contained form")
    try:
        values = json.loads(base64.b64decode(m.group("envelope"), validate=True).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise NotATemplate("the envelope is not base64 of a UTF-8 JSON object") from None
    if not isinstance(values, dict):
        raise NotATemplate("the envelope is not a JSON object")
    name, version = identify(m.group("body"))
    return TemplateRun(name, version, values, m.group("body"))
