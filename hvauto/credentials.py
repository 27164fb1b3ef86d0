"""Credentials: where a password may come from, and how it stays secret.

Order for a host: a Kerberos ticket cache (``auth = "kerberos"`` with no password given),
``HVAUTO_USERNAME``/``HVAUTO_PASSWORD``, the inventory's ``password_command``, an
interactive prompt (only on a terminal, never in a scheduled run). A password is held in
a :class:`Secret`, whose ``repr``/``str`` never show it, so it cannot leak through logs,
exception text or a traceback's locals. It never goes on a command line.
"""

from __future__ import annotations

import getpass
import os
import shlex
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from .errors import AuthError, ConfigError
from .inventory import HostConfig


class Secret:
    """A string that will not print itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")


@dataclass(frozen=True)
class Credentials:
    username: str | None = None
    password: Secret | None = None
    source: str = "none"

    @property
    def ticket_cache(self) -> bool:
        return self.password is None


class CredentialProvider:
    """Resolves credentials per host, once per (username, source) in a process."""

    def __init__(self, *, interactive: bool | None = None, base_dir: Path | None = None) -> None:
        self.interactive = sys.stdin.isatty() if interactive is None else interactive
        self.base_dir = base_dir
        self._cache: dict[tuple[str | None, str | None], Credentials] = {}
        self._lock = threading.Lock()

    def for_host(self, host: HostConfig) -> Credentials:
        key = (host.username, host.password_command)
        with self._lock:
            if key not in self._cache:
                self._cache[key] = self._resolve(host)
            return self._cache[key]

    def _resolve(self, host: HostConfig) -> Credentials:
        env_user = os.environ.get("HVAUTO_USERNAME")
        env_password = os.environ.get("HVAUTO_PASSWORD")
        username = env_user or host.username
        if env_password:
            return Credentials(username, Secret(env_password), "environment")
        if host.password_command:
            return Credentials(username, self._from_command(host), "password_command")
        if host.auth == "kerberos" or not username:
            # Negotiate/Kerberos with no password: the ticket cache (kinit) speaks for us.
            return Credentials(username, None, "ticket cache")
        if self.interactive:
            value = getpass.getpass(f"Password for {username} ({host.name}): ")
            return Credentials(username, Secret(value), "prompt")
        raise AuthError(
            f"no password for {username}",
            host=host.name,
            hint="set HVAUTO_PASSWORD, a password_command in the inventory, or use a Kerberos ticket",
        )

    def _from_command(self, host: HostConfig) -> Secret:
        assert host.password_command
        argv = shlex.split(host.password_command)
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=self.base_dir, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ConfigError(f"password_command could not run: {type(exc).__name__}",
                              key=f"hosts.{host.name}.password_command") from None
        if done.returncode != 0:
            # Its stderr is not shown: a password manager may echo something sensitive.
            raise ConfigError(f"password_command exited {done.returncode}",
                              key=f"hosts.{host.name}.password_command")
        return Secret(done.stdout.rstrip("\r\n"))
