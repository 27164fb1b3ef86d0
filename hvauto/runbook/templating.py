"""Sandboxed Jinja2 for runbook values: option values, ``hosts`` and ``when`` expressions.

Only values go through here, in :class:`jinja2.sandbox.ImmutableSandboxedEnvironment` (no
attribute tricks, no mutation of the variables). PowerShell never does: a ``powershell`` step's
template is rendered by :mod:`hvauto.render` and gets its values as parameters.

A string that is one expression and nothing else (``"{{ hosts_to_patch }}"``) keeps the
expression's type (a list stays a list); any other string with ``{{``/``{%`` renders to text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

import jinja2
import jinja2.meta
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from hvauto.errors import UsageError

_SINGLE = re.compile(r"\A\s*\{\{(?P<expr>.*?)\}\}\s*\Z", re.S)


class RenderError(UsageError):
    """A value or condition that cannot be rendered (undefined variable, bad expression)."""


#: The longest string or list an expression may build (``'a' * 10**10`` would take 10 GB).
MAX_SIZE = 1_000_000
#: The most bits an integer power may have (``10 ** 10**9`` would never finish).
MAX_BITS = 4096


class _Bounded(ImmutableSandboxedEnvironment):
    """The sandbox, with the operators and filters that can build something huge bounded.

    Jinja's sandbox keeps expressions away from Python's internals, not from memory and time:
    ``range`` is bounded (100 000) but ``*``, ``**``, ``+``, ``center``, ``indent``, ``slice``
    and ``lipsum`` are not. Over a bound an expression fails as a SecurityError (a RenderError).
    """

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def wrap_str_format(self, value: Any) -> Any:
        bound = getattr(value, "__self__", None)
        if isinstance(bound, str) and getattr(value, "__name__", "") in ("format", "format_map"):
            _no_wide_fields(bound)  # "{:>999999999}".format(1)
        return super().wrap_str_format(value)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        def size(v: Any) -> int:
            return len(v) if isinstance(v, (str, list, tuple)) else 0

        if operator == "*":
            n = right if isinstance(right, int) else left if isinstance(left, int) else 1
            if max(size(left), size(right)) * max(int(n), 0) > MAX_SIZE:
                raise SecurityError(f"the result would be longer than {MAX_SIZE}")
        elif operator == "**":
            if isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and \
                    right * math.log2(abs(left)) > MAX_BITS:
                raise SecurityError(f"the result would have more than {MAX_BITS} bits")
        elif operator == "+" and size(left) + size(right) > MAX_SIZE:
            raise SecurityError(f"the result would be longer than {MAX_SIZE}")
        elif operator == "%" and isinstance(left, str):
            _no_wide_fields(left)
        return super().call_binop(context, operator, left, right)


def _no_wide_fields(fmt: str) -> None:
    """A format string whose field widths or precisions could build a huge string (``%099999999d``)."""
    if any(int(n) > MAX_SIZE for n in re.findall(r"\d{7,}", fmt)):
        raise SecurityError(f"a format field wider than {MAX_SIZE}")


def _width(name: str, fn: Any, index: int) -> Any:
    def bounded(*args: Any, **kwargs: Any) -> Any:
        values = [*args, *kwargs.values()]
        if any(isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_SIZE for v in values[index:]):
            raise SecurityError(f"{name}: a width or count over {MAX_SIZE}")
        return fn(*args, **kwargs)

    return bounded


_ENV = _Bounded(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)
for _name in ("center", "indent", "slice", "batch", "wordwrap", "truncate"):
    _ENV.filters[_name] = _width(_name, _ENV.filters[_name], 1)
_format = _ENV.filters["format"]


def _bounded_format(value: Any, *args: Any, **kwargs: Any) -> Any:
    if isinstance(value, str):
        _no_wide_fields(value)
    return _format(value, *args, **kwargs)


_ENV.filters["format"] = _bounded_format
_ENV.globals.pop("lipsum", None)


def _defined(value: Any) -> Any:
    """An expression's value; an undefined one (a missing name, an unsafe attribute) fails here, not later."""
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()
    return value


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
                return _defined(_ENV.compile_expression(expr, undefined_to_none=False)(**context))
            return _ENV.from_string(value).render(**context)
        except jinja2.TemplateError as exc:
            raise RenderError(f"cannot render {value!r}: {exc}") from None
        except (ArithmeticError, LookupError, TypeError, ValueError, MemoryError, RecursionError) as exc:
            # 1/0, range(10**9), 'a' + 1 ...: the expression's own fault, not hvauto's.
            raise RenderError(f"cannot render {value!r}: {type(exc).__name__}: {exc}") from None
    if isinstance(value, list):
        return [render(v, context) for v in value]
    if isinstance(value, dict):
        return {k: render(v, context) for k, v in value.items()}
    return value


def evaluate(expression: str, context: Mapping[str, Any]) -> bool:
    """A ``when`` condition: a bare Jinja2 expression (``{{ }}`` around it is allowed too)."""
    expr = _single_expression(expression) or expression
    try:
        return bool(_defined(_ENV.compile_expression(expr, undefined_to_none=False)(**context)))
    except jinja2.TemplateError as exc:
        raise RenderError(f"cannot evaluate when: {expression!r}: {exc}") from None
    except (ArithmeticError, LookupError, TypeError, ValueError, MemoryError, RecursionError) as exc:
        raise RenderError(f"cannot evaluate when: {expression!r}: {type(exc).__name__}: {exc}") from None


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
