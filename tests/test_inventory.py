"""The inventory: layered settings, and a wrong file fails with the file, the key and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from hvauto.errors import ConfigError, UnknownHostError
from hvauto.inventory import load, parse

GOOD = """
[defaults]
transport = "psrp"
auth = "kerberos"
domain = "contoso.com"

[hosts.hv01]
roles = ["hyperv"]
os = "2012 R2"

[hosts.hv02]
roles = ["hyperv"]
address = "10.0.0.2"
port = 5986

[hosts.fs01]
roles = ["fileserver"]
tls = false
auth = "ntlm"

[groups]
prod = ["hv01", "hv02"]
"""


def test_layers_and_lookups(tmp_path: Path) -> None:
    inv = parse(GOOD, tmp_path / "hvauto.toml")
    hv01 = inv.host("HV01")  # Windows names are case-insensitive
    assert hv01.name == "hv01"
    assert hv01.os == "2012r2"
    assert hv01.address == "hv01.contoso.com"
    assert hv01.endpoint == "https://hv01.contoso.com:5986/wsman"
    assert inv.host("hv02").address == "10.0.0.2"
    assert inv.host("fs01").endpoint == "http://fs01.contoso.com:5985/wsman"
    assert inv.resolve(["prod"]) == ["hv01", "hv02"]
    assert inv.resolve([], default_role="hyperv") == ["hv01", "hv02"]
    assert inv.resolve(["role:fileserver", "hv01,hv01"]) == ["fs01", "hv01"]
    assert inv.netbios == "CONTOSO"
    with pytest.raises(UnknownHostError):
        inv.host("nope")


def test_environment_overrides_inventory_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HVAUTO_TRANSPORT", "winrm")
    inv = parse(GOOD, tmp_path / "hvauto.toml")
    assert inv.host("hv01").transport == "winrm"


def test_user_config_is_the_lowest_layer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "user"
    conf.mkdir()
    (conf / "config.toml").write_text('[defaults]\nread_timeout = 99\nauth = "ntlm"\n')
    monkeypatch.setenv("HVAUTO_CONFIG_DIR", str(conf))
    inv = parse(GOOD, tmp_path / "hvauto.toml")
    assert inv.host("hv01").read_timeout == 99.0
    assert inv.host("hv01").auth == "kerberos"  # the inventory's defaults win over the user's


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("[hosts.a]\ntransport = 'ssh'\n", "hosts.a.transport", "unknown transport"),
        ("[hosts.a]\nport = 'x'\n", "hosts.a.port", "positive integer"),
        ("[hosts.a]\nroles = ['dns']\n", "hosts.a.roles", "unknown role"),
        ("[hosts.a]\nos = '2008'\n", "hosts.a.os", "unknown Windows Server version"),
        ("[hosts.a]\ncolour = 'red'\n", "hosts.a.colour", "unknown setting"),
        ("[hosts.a]\npassword = 'hunter2'\n", "hosts.a.password", "passwords do not belong"),
        ("[hosts.a]\ntls = false\nauth = 'basic'\n", "hosts.a", "refused"),
        ("[hosts.a]\ntls = false\nencryption = 'never'\n", "hosts.a", "refused"),
        ("[hosts.a]\n[groups]\ng = ['b']\n", "groups.g", "unknown host 'b'"),
        ("[hosts.a]\ntransport = 'lab'\n", "hosts.a", "lab_state"),
        ("[hostz.a]\n", "hostz", "unknown table"),
        ("[defaults]\n", "hosts", "no hosts"),
        ('[hosts."a\\n"]\n', "hosts.a", "not a valid host name"),
    ],
)
def test_bad_inventory_names_file_key_and_reason(tmp_path: Path, text: str, key: str, reason: str) -> None:
    path = tmp_path / "bad.toml"
    with pytest.raises(ConfigError) as err:
        parse(text, path)
    assert str(path) in str(err.value)
    assert key in str(err.value)
    assert reason in str(err.value)
    assert "hunter2" not in str(err.value)


def test_plain_http_basic_allowed_only_when_asked(tmp_path: Path) -> None:
    inv = parse("[hosts.a]\ntls = false\nauth = 'basic'\nallow_unencrypted = true\n", tmp_path / "i.toml")
    assert inv.host("a").tls is False


def test_not_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse("[hosts\n", tmp_path / "i.toml")


def test_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "i.toml"
    path.write_bytes(b"\xff\xfe[hosts.a]\n")
    with pytest.raises(ConfigError, match="cannot read: not UTF-8 text"):
        load(path)


def test_explicit_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such inventory"):
        load(tmp_path / "missing.toml")


def test_verify_false_is_warned_about_on_every_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hvauto.credentials import Credentials
    from hvauto.remote import open_transport

    path = tmp_path / "i.toml"
    path.write_text('[hosts.hv1]\ntransport = "psrp"\nverify = false\n[hosts.hv2]\ntransport = "psrp"\n')
    inv = load(path)
    for _ in range(2):
        open_transport(inv.host("hv1"), Credentials("u", None, "test")).close()
        open_transport(inv.host("hv2"), Credentials("u", None, "test")).close()
    err = capsys.readouterr().err
    assert err.count("hv1: TLS certificate verification is off (verify = false)") == 2
    assert "hv2" not in err
