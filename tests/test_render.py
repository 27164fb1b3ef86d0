"""Rendering: shape from Jinja2, values only as bound parameters or inside the envelope."""

from __future__ import annotations

import base64
import json

import pytest

from hvauto.errors import TemplateError, UsageError
from hvauto.render import Renderer

R = Renderer()
HOSTILE = "x'; Remove-Item C:\\ -Recurse; $(whoami) `n\"\u2019\u201d\n#> <#"


def test_values_never_enter_the_body() -> None:
    script = R.render("vm_list", "2022", {"Name": [HOSTILE]})
    assert HOSTILE not in script.body
    assert "whoami" not in script.body
    assert script.params == {"Name": [HOSTILE]}


def test_envelope_round_trips_and_is_base64_only() -> None:
    script = R.render("vm_list", "2012", {"Name": [HOSTILE, "\x00", "é" * 5000]})
    text = script.as_text()
    env = script.envelope()
    assert f"$hvautoEnvelope = '{env}'" in text
    assert set(env) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
    assert json.loads(base64.b64decode(env).decode("utf-8")) == {"Name": [HOSTILE, "\x00", "é" * 5000]}
    assert "whoami" not in text


@pytest.mark.parametrize(
    ("params", "why"),
    [
        ({"Nmae": ["x"]}, "no such parameter"),
        ({"Name": "vm01"}, "list of strings"),
        ({"Name": [1]}, "expected a string, got int"),
    ],
)
def test_parameters_are_checked_against_the_header(params: dict[str, object], why: str) -> None:
    with pytest.raises(TemplateError, match=why):
        R.render("vm_list", "2022", params)


def test_version_branches_are_shape() -> None:
    assert "$vmhost.VirtualMachineMigrationPerformanceOption" in R.render("host_facts", "2012r2").body
    assert "$vmhost.VirtualMachineMigrationPerformanceOption" not in R.render("host_facts", "2012").body
    assert "Get-VMHostSupportedVersion" in R.render("host_facts", "2016").body


def test_unknown_template_and_version() -> None:
    with pytest.raises(TemplateError):
        R.render("no_such_template", "2022")
    with pytest.raises(UsageError):
        R.render("vm_list", "2008")


def test_every_template_has_metadata() -> None:
    for name in R.names():
        meta = R.meta(name)
        assert meta.summary, name
        assert meta.targets, name
