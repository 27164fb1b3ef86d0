"""No value can become code: the text form of every template keeps its structure whatever the values.

The self-contained text form (:meth:`hvauto.remote.base.Script.as_text`, what pywinrm sends and
``--render`` prints) carries the values in one base64 JSON string literal. For arbitrary strings,
quotes of every kind, subexpressions, here-string openers, comment delimiters, control characters,
non-ASCII and very long values, the parse tree and the code text outside that literal must be
exactly those of a plain value, and the literal must decode to exactly the values given.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hvauto import pscheck
from hvauto.render import Renderer, TemplateMeta
from hvauto.script import Script

RENDERER = Renderer()
NAMES = [n for n in RENDERER.names() if not n.startswith("_")]

NASTY = [
    "'", '"', "\u2018", "\u2019", "\u201a", "\u201b", "\u201c", "\u201d", "\u201e", "\u201f",
    "$()", "$(Remove-Item C:\\ -Recurse)", "'; Remove-Item C:\\ -Recurse; '", "\"$(Stop-Computer)\"",
    "`", "``n", "`\"", "@'", "'@", '@"', '"@', "@'\n", "\n'@\n", "#>", "<#", "# comment", "\n", "\r", "\r\n",
    "\x00", "\u2013Name", "\u2014", "${env:PATH}", "$env:COMPUTERNAME", "{{ version }}", "{% if %}", "\\", "\ufeff",
    "\u00e9\u00e8\u4e2d\u6587\U0001f600", "=", "+/", "\t",
]  # fmt: skip

_plain = st.text(max_size=40)
_nasty = st.lists(st.one_of(st.sampled_from(NASTY), _plain), min_size=1, max_size=8).map("".join)
_long = st.tuples(st.text(min_size=1, max_size=8), st.sampled_from(NASTY)).map(
    lambda parts: ((parts[0] + parts[1]) * (10_000 // len(parts[0] + parts[1]) + 2))
)
STRINGS = st.one_of(st.sampled_from(NASTY), _nasty, _plain, _long)
_INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)

_BY_TYPE: dict[str, st.SearchStrategy[Any]] = {
    "string": STRINGS,
    "string[]": st.lists(STRINGS, max_size=3),
    "int": _INT64,
    "int[]": st.lists(_INT64, max_size=3),
    "bool": st.booleans(),
    "switch": st.booleans(),
}


def _objects(spec: Any) -> st.SearchStrategy[Any]:
    one = st.fixed_dictionaries({k: _BY_TYPE[t] for k, t in spec.fields.items()})
    return st.lists(one, max_size=3) if spec.type.endswith("[]") else one


def _strategy(spec: Any) -> st.SearchStrategy[Any]:
    return _objects(spec) if spec.type.startswith("object") else _BY_TYPE[spec.type]


def _values(meta: TemplateMeta) -> st.SearchStrategy[dict[str, Any]]:
    # A Mandatory parameter refuses '' and @() (PowerShell's binder, and so the renderer).
    required = {n: _strategy(s).filter(lambda v: v not in ("", [])) for n, s in meta.params.items() if s.required}
    optional = {n: _strategy(s) for n, s in meta.params.items() if not s.required}
    return st.fixed_dictionaries(required, optional=optional)


def _plain_script(name: str, version: str) -> Script:
    return RENDERER.render(name, version, pscheck.sample_params(RENDERER.meta(name)))


def _decoded_envelope(text: str) -> Any:
    literal = pscheck.envelope_literal(pscheck.parse(pscheck.fold_typography(text)))
    assert literal is not None, "the text form has no $hvautoEnvelope literal"
    quoted = pscheck.node_text(literal)
    assert quoted[0] == quoted[-1] == "'"
    payload = quoted[1:-1]
    assert payload.isascii() and all(c.isalnum() or c in "+/=" for c in payload)
    return json.loads(base64.b64decode(payload, validate=True).decode("utf-8"))


def _strings_in(values: Any) -> list[str]:
    """Every string in a parameter value, also inside lists and object parameters."""
    if isinstance(values, str):
        return [values]
    if isinstance(values, dict):
        values = list(values.values())
    if isinstance(values, list):
        return [s for v in values for s in _strings_in(v)]
    return []


@pytest.mark.parametrize("name", NAMES)
@settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@given(data=st.data())
def test_values_never_change_the_code(name: str, data: st.DataObject) -> None:
    meta = RENDERER.meta(name)
    version = data.draw(st.sampled_from(meta.targets), label="version")
    plain = _plain_script(name, version)
    plain_types, plain_code = pscheck.structure(plain.as_text())

    values = data.draw(_values(meta), label="values")
    script = RENDERER.render(name, version, values)
    assert script.body == plain.body, "the body changed with the values"
    for value in _strings_in(values):
        if value.strip() and value not in plain.body:
            assert value not in script.body

    # The declared parameters, and an arbitrary string under any name (every template gets one).
    probe = dataclasses.replace(script, params={**script.params, "hvautoProbe": data.draw(STRINGS, label="probe")})
    for candidate in (script, probe):
        text = candidate.as_text()
        types, code = pscheck.structure(text)
        assert types == plain_types, "the parse tree of the text form depends on the values"
        assert code == plain_code, "the code outside the envelope depends on the values"
        assert _decoded_envelope(text) == dict(candidate.params)


@pytest.mark.parametrize("name", NAMES)
def test_plain_text_form_has_exactly_one_envelope_and_parses(name: str) -> None:
    meta = RENDERER.meta(name)
    for version in meta.targets:
        text = _plain_script(name, version).as_text()
        assert _decoded_envelope(text) == pscheck.sample_params(meta)
        assert text.count("$hvautoEnvelope = '") == 1
        tree = pscheck.parse(pscheck.fold_typography(text))
        assert not pscheck.parse_errors(tree)


def test_structure_sees_code_injection() -> None:
    """The comparison above can fail: a value pasted into the code changes the structure."""
    plain = _plain_script("vm_list", "2022")
    injected = plain.as_text().replace("$list = @()", "$list = @('x'); Remove-Item C:\\ -Recurse; $list = @()", 1)
    assert injected != plain.as_text()
    assert pscheck.structure(injected) != pscheck.structure(plain.as_text())
    quoted = plain.as_text().replace("$list = @()", "$list = @('a''b')", 1)
    assert pscheck.structure(quoted)[1] != pscheck.structure(plain.as_text())[1]
