"""Sandboxed Jinja2 for runbook values: option values, ``hosts`` and ``when`` expressions.

Only values go through here, in :class:`jinja2.sandbox.ImmutableSandboxedEnvironment` (no
attribute tricks, no mutation of the variables). PowerShell never does: a ``powershell`` step's
template is rendered by :mod:`hvauto.render` and gets its values as parameters.

A string that is one expression and nothing else (``"{{ hosts_to_patch }}"``) keeps the
expression's type (a list stays a list); any other string with ``{{``/``{%`` renders to text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import jinja2
import jinja2.meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from hvauto.errors import UsageError

_SINGLE = re.compile(r"\A\s*\{\{(?P<expr>.*?)\}\}\s*\Z", re.S)


class RenderError(UsageError):
    """A value or condition that cannot be rendered (undefined variable, bad expression)."""


_ENV = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)


def is_templated(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _single_expression(text: str) -> str | None:
    m = _SINGLE.match(text)
    if m and "{{" not in m.group("expr") and "}}" not in m.group("expr"):
        return m.group("expr")
    return None


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every templated string inside ``value`` (lists and maps too)."""
    if isinstance(value, str):
        if not is_templated(value):
            return value
        try:
            expr = _single_expression(value)
            if expr is not None:
                return _ENV.compile_expression(expr, undefined_to_none=False)(**context)
            return _ENV.from_string(value).render(**context)
        except jinja2.TemplateError as exc:
            raise RenderError(f"cannot render {value!r}: {exc}") from None
    if isinstance(value, list):
        return [render(v, context) for v in value]
    if isinstance(value, dict):
        return {k: render(v, context) for k, v in value.items()}
    return value


def evaluate(expression: str, context: Mapping[str, Any]) -> bool:
    """A ``when`` condition: a bare Jinja2 expression (``{{ }}`` around it is allowed too)."""
    expr = _single_expression(expression) or expression
    try:
        return bool(_ENV.compile_expression(expr, undefined_to_none=False)(**context))
    except jinja2.TemplateError as exc:
        raise RenderError(f"cannot evaluate when: {expression!r}: {exc}") from None


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)


def variables(value: Any, *, expression: bool = False) -> set[str]:
    """The variable names a value (or a bare expression) refers to; raises on a syntax error."""
    found: set[str] = set()
    texts = [f"{{{{ {_single_expression(value) or value} }}}}"] if expression and isinstance(value, str) else [
        s for s in _strings(value) if is_templated(s)]
    for text in texts:
        try:
            found |= jinja2.meta.find_undeclared_variables(_ENV.parse(text))
        except jinja2.TemplateSyntaxError as exc:
            raise RenderError(f"bad expression: {exc.message}") from None
    return found
