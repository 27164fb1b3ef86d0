"""Credentials: where they come from, and that a password never shows itself."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import pytest

from hvauto.credentials import CredentialProvider, Secret
from hvauto.errors import AuthError, ConfigError
from hvauto.inventory import HostConfig


def test_secret_never_prints() -> None:
    s = Secret("hunter2")
    assert "hunter2" not in repr(s)
    assert "hunter2" not in str(s)
    assert "hunter2" not in f"{s} {s!r} {[s]} {({'p': s})}"
    assert s.reveal() == "hunter2"
    with pytest.raises(TypeError):
        pickle.dumps(s)


def test_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HVAUTO_USERNAME", "LAB\\op")
    monkeypatch.setenv("HVAUTO_PASSWORD", "pw-from-env")
    creds = CredentialProvider(interactive=False).for_host(HostConfig("h", auth="ntlm", username="x"))
    assert creds.username == "LAB\\op"
    assert creds.password is not None and creds.password.reveal() == "pw-from-env"
    assert creds.source == "environment"


def test_password_command_runs_without_a_shell(tmp_path: Path) -> None:
    script = tmp_path / "pw.py"
    script.write_text("print('from-command')\n")
    cfg = HostConfig("h", auth="ntlm", username="u", password_command=f"{sys.executable} {script}")
    creds = CredentialProvider(interactive=False).for_host(cfg)
    assert creds.password is not None and creds.password.reveal() == "from-command"


def test_failing_password_command_is_a_config_error(tmp_path: Path) -> None:
    cfg = HostConfig("h", auth="ntlm", username="u", password_command=f"{sys.executable} -c 'import sys; sys.exit(3)'")
    with pytest.raises(ConfigError, match="exited 3"):
        CredentialProvider(interactive=False).for_host(cfg)


def test_kerberos_uses_the_ticket_cache() -> None:
    creds = CredentialProvider(interactive=False).for_host(HostConfig("h", auth="kerberos", username="u@X"))
    assert creds.ticket_cache


def test_no_password_and_no_terminal_never_prompts() -> None:
    with pytest.raises(AuthError, match="no password"):
        CredentialProvider(interactive=False).for_host(HostConfig("h", auth="ntlm", username="u"))
