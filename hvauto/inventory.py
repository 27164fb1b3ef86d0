"""The inventory: hosts, groups, roles and how to reach each host.

TOML, found as ``--inventory FILE``, else ``$HVAUTO_INVENTORY``, else ``./hvauto.toml``.
Settings layer like invoke's Config (later wins): built-in defaults, the user's config
file (``<app dir>/config.toml``, its ``[defaults]`` table), the inventory's ``[defaults]``,
``HVAUTO_*`` environment variables, the host's own table. A wrong inventory fails
with the file, the key and the reason.

    [defaults]
    transport = "psrp"          # psrp | winrm | lab
    auth = "negotiate"          # negotiate | kerberos | ntlm | basic | credssp
    domain = "lab.test"

    [hosts.hostA]
    address = "hostA.lab.test"
    roles = ["hyperv"]
    os = "2022"                 # optional; discovered when absent

    [groups]
    prod = ["hostA", "hostB"]
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import shlex
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from . import versions
from .errors import ConfigError, NoInventoryError, UnknownHostError, UsageError, ValidationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

TRANSPORTS = ("psrp", "winrm", "lab")
AUTHS = ("negotiate", "kerberos", "ntlm", "basic", "credssp")
ROLES = ("hyperv", "fileserver", "ad", "cluster")
ENCRYPTION = ("auto", "always", "never")
_HOST_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,253}\Z")  # \Z: "$" would let a trailing newline through


@dataclass(frozen=True)
class HostConfig:
    """How to reach one host, fully resolved from the layers."""

    name: str
    address: str = ""
    transport: str = "psrp"
    port: int | None = None
    tls: bool = True
    verify: bool = True
    ca_path: str | None = None
    auth: str = "negotiate"
    username: str | None = None
    password_command: str | None = None
    encryption: str = "auto"
    allow_unencrypted: bool = False
    roles: tuple[str, ...] = ()
    os: str | None = None
    domain: str | None = None
    connect_timeout: float = 15.0
    operation_timeout: float = 20.0
    read_timeout: float = 60.0
    max_concurrency: int = 4
    path: str = "wsman"
    lab_state: str | None = None
    cluster: str | None = None

    @property
    def effective_port(self) -> int:
        return self.port or (5986 if self.tls else 5985)

    @property
    def fqdn(self) -> str:
        # An IP address says where to connect, not the host's name (Kerberos SPNs, delegation).
        if "." in self.address and not _is_ip(self.address):
            return self.address
        return f"{self.name}.{self.domain}" if self.domain else self.name

    @property
    def spn_host(self) -> str | None:
        """The name Kerberos must ask a ticket for when hvauto connects by another address.

        Windows registers ``HTTP/`` (WinRM's) SPNs under the host's names, not its IP addresses: an
        inventory that connects by address (``address: 10.0.0.11``) would otherwise ask for
        ``HTTP/10.0.0.11`` and fall back to NTLM, or fail under Kerberos. None when the address is a name.
        """
        if self.address and self.address.lower() != self.fqdn.lower():
            return self.fqdn
        return None

    @property
    def endpoint(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.address or self.name}:{self.effective_port}/{self.path}"


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


_HOST_KEYS = {f.name for f in fields(HostConfig)} - {"name"}
_INT_KEYS = {"port", "max_concurrency"}
_FLOAT_KEYS = {"connect_timeout", "operation_timeout", "read_timeout"}
#: The longest timeout the inventory may set (inf or NaN would never end, or crash a socket call).
MAX_TIMEOUT = 86400
_BOOL_KEYS = {"tls", "verify", "allow_unencrypted"}
_STR_KEYS = _HOST_KEYS - _INT_KEYS - _FLOAT_KEYS - _BOOL_KEYS - {"roles"}

#: HVAUTO_* variables that override the defaults of every host.
ENV_KEYS = {
    "HVAUTO_TRANSPORT": "transport",
    "HVAUTO_AUTH": "auth",
    "HVAUTO_CA_PATH": "ca_path",
    "HVAUTO_USERNAME": "username",
    "HVAUTO_READ_TIMEOUT": "read_timeout",
}


def _check_value(path: str, key: str, name: str, value: Any) -> Any:
    where = key

    def bad(why: str) -> ConfigError:
        return ConfigError(why, path=path, key=where)

    if name == "roles":
        if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
            raise bad("expected a list of role names")
        unknown = [r for r in value if r not in ROLES]
        if unknown:
            raise bad(f"unknown role(s) {', '.join(unknown)}; roles are {', '.join(ROLES)}")
        return tuple(value)
    if name in _BOOL_KEYS:
        if not isinstance(value, bool):
            raise bad("expected true or false")
        return value
    if name in _INT_KEYS:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise bad("expected a positive integer")
        if name == "port" and value > 65535:
            raise bad("expected a TCP port, 1 to 65535")
        return value
    if name in _FLOAT_KEYS:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise bad("expected a positive, finite number of seconds")
        if value > MAX_TIMEOUT:
            raise bad(f"expected at most {MAX_TIMEOUT} seconds (a day)")
        return float(value)
    if name == "password_command":
        if not isinstance(value, str):
            raise bad("expected a string")
        try:
            if not shlex.split(value):
                raise bad("expected a command")
        except ValueError as exc:
            raise bad(f"cannot split into a command: {exc}") from None
        return value
    if not isinstance(value, str):
        raise bad("expected a string")
    if name == "transport" and value not in TRANSPORTS:
        raise bad(f"unknown transport {value!r}; expected one of {', '.join(TRANSPORTS)}")
    if name == "auth" and value not in AUTHS:
        raise bad(f"unknown auth {value!r}; expected one of {', '.join(AUTHS)}")
    if name == "encryption" and value not in ENCRYPTION:
        raise bad(f"unknown encryption {value!r}; expected one of {', '.join(ENCRYPTION)}")
    if name == "os":
        try:
            return versions.normalize(value)
        except UsageError as exc:
            raise bad(exc.message) from None
    return value


def _check_table(path: str, prefix: str, table: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key == "password":
            raise ConfigError(
                "passwords do not belong in the inventory; use password_command, HVAUTO_PASSWORD or a Kerberos ticket",
                path=path,
                key=f"{prefix}{key}",
            )
        if key not in _HOST_KEYS:
            raise ConfigError(f"unknown setting {key!r}", path=path, key=f"{prefix}{key}")
        out[key] = _check_value(path, f"{prefix}{key}", key, value)
    return out


@dataclass
class Inventory:
    path: Path
    hosts: dict[str, HostConfig]
    groups: dict[str, list[str]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def domain(self) -> str | None:
        for h in self.hosts.values():
            if h.domain:
                return h.domain
        return None

    @property
    def netbios(self) -> str:
        """The NetBIOS domain name, as in ``LAB\\hostA$``."""
        value = self.settings.get("netbios")
        if isinstance(value, str) and value:
            return value
        return (self.domain or "WORKGROUP").split(".")[0].upper()

    def host(self, name: str) -> HostConfig:
        """Look a host up by name, case-insensitively (Windows names are)."""
        if name in self.hosts:
            return self.hosts[name]
        for key, cfg in self.hosts.items():
            if key.lower() == name.lower() or cfg.fqdn.lower() == name.lower():
                return cfg
        raise UnknownHostError(name, list(self.hosts))

    def with_role(self, role: str) -> list[str]:
        return [h for h, cfg in self.hosts.items() if role in cfg.roles]

    def resolve(self, targets: Iterable[str], *, default_role: str | None = None) -> list[str]:
        """Hosts named by host names, group names or ``role:NAME``; in order, without repeats."""
        out: list[str] = []
        targets = list(targets)
        if not targets and default_role:
            targets = [f"role:{default_role}"]
        for target in targets:
            for part in (p.strip() for p in target.split(",")):
                if not part:
                    continue
                if part.startswith("role:"):
                    names = self.with_role(part[5:])
                elif part in self.groups:
                    names = list(self.groups[part])
                else:
                    names = [self.host(part).name]
                out.extend(n for n in names if n not in out)
        return out


def config_dir() -> Path:
    """hvauto's user configuration directory: ``$HVAUTO_CONFIG_DIR``, else the platform's.

    The platform's is where typer's (click's) ``get_app_dir("hvauto")`` puts it (``%APPDATA%\\hvauto``,
    ``~/Library/Application Support/hvauto``, ``$XDG_CONFIG_HOME/hvauto`` or ``~/.config/hvauto``),
    computed here so that the engine never imports the CLI's libraries.
    """
    base = os.environ.get("HVAUTO_CONFIG_DIR")
    if base is not None:
        return Path(base)
    if sys.platform.startswith("win"):
        return Path(os.environ.get("APPDATA") or os.path.expanduser("~")) / "hvauto"
    if sys.platform == "darwin":
        return Path(os.path.expanduser("~/Library/Application Support")) / "hvauto"
    return Path(os.environ.get("XDG_CONFIG_HOME", os.path.expanduser("~/.config"))) / "hvauto"


def _user_defaults() -> tuple[str, dict[str, Any]]:
    """The user's own defaults: ``<config dir>/config.toml``, table ``[defaults]``."""
    path = config_dir() / "config.toml"
    if not path.exists():
        return str(path), {}
    data = _toml(_read(path), str(path))
    return str(path), _check_table(str(path), "defaults.", data.get("defaults", {}))


def _env_defaults() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for var, key in ENV_KEYS.items():
        raw = os.environ.get(var)
        if raw:
            value: Any = raw
            if key in _FLOAT_KEYS:
                try:
                    value = float(raw)
                except ValueError:
                    raise ConfigError(f"expected a number of seconds, got {raw!r}", path=f"${var}") from None
            out[key] = _check_value(f"${var}", var, key, value)
    return out


def find_inventory(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        path = Path(explicit)
        if path.exists() and not path.is_file():
            raise ConfigError("not a regular file", path=str(path))
        if not path.is_file():
            raise ConfigError("no such inventory file", path=str(path),
                              hint="run `hvauto lab init` to create one, or check the path")
        return path
    env = os.environ.get("HVAUTO_INVENTORY")
    if env:
        path = Path(env)
        if not path.is_file():
            raise ConfigError("no such inventory file (from $HVAUTO_INVENTORY)", path=str(path))
        return path
    path = Path.cwd() / "hvauto.toml"
    if path.is_file():
        return path
    raise NoInventoryError("--inventory, $HVAUTO_INVENTORY and ./hvauto.toml")


def load(explicit: str | os.PathLike[str] | None = None) -> Inventory:
    path = find_inventory(explicit)
    return parse(_read(path), path)


def _read(path: Path) -> str:
    """The file's text within hvauto's input limits (a regular UTF-8 file of at most 1 MiB)."""
    from hvauto import text

    try:
        return text.read_file(path, what="configuration file")
    except ValidationError as exc:
        raise ConfigError(exc.problems[0]) from None  # the problem names the file


def _toml(text: str, where: str) -> dict[str, Any]:
    """Parse TOML; too deep a nesting (tomllib recurses) is a configuration error, not a RecursionError."""
    from hvauto import text as texts

    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=where) from None
    except RecursionError:
        raise ConfigError("not valid TOML: nested too deeply to read", path=where) from None

    def depth(v: Any) -> int:
        items = v.values() if isinstance(v, dict) else v if isinstance(v, list) else ()
        return 1 + max((depth(i) for i in items), default=0)

    try:
        deep = depth(data) > texts.MAX_DEPTH
    except RecursionError:
        deep = True
    if deep:
        raise ConfigError(f"nested more than {texts.MAX_DEPTH} levels deep", path=where)
    return data


def parse(text: str, path: Path) -> Inventory:
    where = str(path)
    data = _toml(text, where)
    known = {"defaults", "hosts", "groups", "settings"}
    for key in data:
        if key not in known:
            raise ConfigError(f"unknown table {key!r}; expected {', '.join(sorted(known))}", path=where, key=key)
    _, user = _user_defaults()
    defaults = {**user, **_check_table(where, "defaults.", data.get("defaults", {})), **_env_defaults()}
    hosts_table = data.get("hosts", {})
    if not isinstance(hosts_table, dict) or not hosts_table:
        raise ConfigError("no hosts defined", path=where, key="hosts")
    hosts: dict[str, HostConfig] = {}
    for name, table in hosts_table.items():
        if not _HOST_RE.match(name):
            raise ConfigError("not a valid host name", path=where, key=f"hosts.{name}")
        if not isinstance(table, dict):
            raise ConfigError("expected a table", path=where, key=f"hosts.{name}")
        own = _check_table(where, f"hosts.{name}.", table)
        merged = {**defaults, **own}
        if merged.get("lab_state") and not Path(merged["lab_state"]).is_absolute():
            merged["lab_state"] = str((path.parent / merged["lab_state"]).resolve())
        if merged.get("ca_path") and not Path(merged["ca_path"]).is_absolute():
            merged["ca_path"] = str((path.parent / merged["ca_path"]).resolve())
        cfg = HostConfig(name=name, **merged)
        if not cfg.address:
            cfg = replace(cfg, address=cfg.fqdn)
        _check_security(where, cfg)
        hosts[name] = cfg
    groups: dict[str, list[str]] = {}
    for gname, members in data.get("groups", {}).items():
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise ConfigError("expected a list of host names", path=where, key=f"groups.{gname}")
        if gname in hosts:
            raise ConfigError("a group cannot have a host's name", path=where, key=f"groups.{gname}")
        for m in members:
            if m not in hosts:
                raise ConfigError(f"unknown host {m!r}", path=where, key=f"groups.{gname}")
        groups[gname] = list(members)
    settings = data.get("settings", {})
    if not isinstance(settings, dict):
        raise ConfigError("expected a table", path=where, key="settings")
    return Inventory(path=path, hosts=hosts, groups=groups, settings=settings)


def _check_security(where: str, cfg: HostConfig) -> None:
    key = f"hosts.{cfg.name}"
    if cfg.transport == "lab":
        if not cfg.lab_state:
            raise ConfigError("the lab transport needs lab_state (the estate's SQLite file)", path=where, key=key)
        if Path(cfg.lab_state).exists() and not Path(cfg.lab_state).is_file():
            raise ConfigError(f"lab_state {cfg.lab_state} is not a file (the estate's SQLite file)", path=where,
                              key=f"{key}.lab_state")
        return
    if cfg.tls:
        return
    # Basic can never be encrypted at the message level; NTLM/Negotiate/Kerberos/CredSSP are,
    # unless encryption = "never". Either way, cleartext must be asked for explicitly.
    cleartext = cfg.auth == "basic" or cfg.encryption == "never"
    if cleartext and not cfg.allow_unencrypted:
        raise ConfigError(
            f"{cfg.auth} over plain HTTP without message encryption is refused",
            path=where,
            key=key,
            hint="use tls = true, or set allow_unencrypted = true for this host if you accept the risk",
        )
