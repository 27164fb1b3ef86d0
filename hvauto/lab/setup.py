"""``hvauto lab init`` and ``hvauto lab reset``: write the lab's inventory and a fresh estate."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from hvauto.errors import UsageError

from . import estatefile
from .estate import DOMAIN, NETBIOS
from .store import LabStore

MARKER = "# hvauto lab inventory"
STATE = "lab/estate.db"
PASSWORD_FILE = "lab/password"

ESTATE_COPY = "lab/estate.yaml"
#: The lab's hosts, in inventory order: (name, roles, os; None = ask the host).
HostLine = tuple[str, tuple[str, ...], str | None]


def _toml_list(items: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(f'"{i}"' for i in items) + "]"


def _host_blocks(hosts: list[HostLine], *, path: bool = False) -> list[str]:
    """One ``[hosts.NAME]`` table per estate host (its URL path on the wire endpoint when ``path``)."""
    blocks = []
    for name, roles, os_version in hosts:
        lines = [f"[hosts.{name}]", *([f'path = "wsman/{name}"'] if path else []), f"roles = {_toml_list(roles)}"]
        if os_version:
            lines.append(f'os = "{os_version}"')
        else:
            lines.insert(0, "# No `os` here on purpose: hvauto asks the host (one PowerShell 3.0-safe round trip).")
        blocks.append("\n".join(lines))
    return blocks


def _groups(hosts: list[HostLine]) -> str:
    hyperv = [name for name, roles, _ in hosts if "hyperv" in roles]
    return f"\n[groups]\nhyperv = {_toml_list(hyperv)}\n" if hyperv else ""


def local_inventory(hosts: list[HostLine]) -> str:
    """The inventory of the in-process lab: every host of the estate, on the ``lab`` transport."""
    blocks = _host_blocks(hosts)
    return (
        f"{MARKER}, written by `hvauto lab init`.\n"
        "# The hosts below are simulated: the `lab` transport answers every script from the estate\n"
        f"# in {STATE} (SQLite). `hvauto lab reset` restores the estate; `hvauto lab fault` injects faults.\n"
        "# The lab accepts your (simulated) Kerberos ticket; the password in "
        f"{PASSWORD_FILE} is for\n# LAB\\Administrator when you try the password paths (HVAUTO_USERNAME / HVAUTO_PASSWORD).\n\n"
        f'[settings]\nnetbios = "{NETBIOS}"\n\n'
        f'[defaults]\ntransport = "lab"\nlab_state = "{STATE}"\nauth = "kerberos"\ndomain = "{DOMAIN}"\n\n'
        + "\n\n".join(blocks) + "\n" + _groups(hosts)
    )


DEFAULT_SERVE_PORT = {True: 55986, False: 55985}


@dataclass(frozen=True)
class ServeOptions:
    """``lab init --serve``: the hosts use the real psrp transport against ``hvauto lab serve``."""

    port: int | None = None
    tls: bool = True

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_SERVE_PORT[self.tls]


def serve_inventory(opts: ServeOptions, hosts: list[HostLine]) -> str:
    """The inventory for the lab over the wire: one endpoint on 127.0.0.1, one path per host."""
    if opts.tls:
        security = 'tls = true\nca_path = "lab/ca.pem"  # the lab\'s own CA: validation stays on\n'
    else:
        security = ("tls = false\n# Basic over plain HTTP sends the password in the clear: acceptable on loopback only.\n"
                    "allow_unencrypted = true\n")
    blocks = _host_blocks(hosts, path=True)
    return (
        f"{MARKER}, written by `hvauto lab init --serve`.\n"
        "# The hosts below are simulated and reached over real WinRM/PSRP: `hvauto lab serve` answers\n"
        f"# on 127.0.0.1:{opts.effective_port} from the estate in {STATE}, one URL path per host.\n"
        f"# The password for LAB\\Administrator is in {PASSWORD_FILE}.\n\n"
        f'[settings]\nnetbios = "{NETBIOS}"\n\n'
        "[defaults]\n"
        'transport = "psrp"\n'
        'address = "127.0.0.1"\n'
        f"port = {opts.effective_port}\n"
        f"{security}"
        'auth = "basic"\n'
        f'username = "{NETBIOS}\\\\Administrator"\n'
        f'password_command = "cat {PASSWORD_FILE}"\n'
        f'lab_state = "{STATE}"\n'
        f'domain = "{DOMAIN}"\n\n'
        + "\n\n".join(blocks) + "\n" + _groups(hosts)
    )


@dataclass(frozen=True)
class LabPaths:
    inventory: Path
    state: Path
    password: Path


def paths(directory: Path) -> LabPaths:
    return LabPaths(directory / "hvauto.toml", directory / STATE, directory / PASSWORD_FILE)


def load_estate(state: Path, password: str, estate: Path | None = None) -> estatefile.Loaded:
    """Replace the store's estate with the one in ``estate`` (default: the shipped default estate)."""
    loaded = estatefile.read(estate or estatefile.default_path())
    objects = dict(loaded.objects)
    objects["account"] = [
        {"key": f"{NETBIOS}\\Administrator".lower(), "name": f"{NETBIOS}\\Administrator", "password": password},
        {"key": f"Administrator@{DOMAIN}".lower(), "name": f"Administrator@{DOMAIN}", "password": password},
    ]
    store = LabStore(state)
    try:
        store.load(objects, {"domain": DOMAIN, "netbios": NETBIOS, "time_scale": "1.0"})
    finally:
        store.close()
    return loaded


def init(directory: Path, *, force: bool = False, serve: ServeOptions | None = None,
         estate: Path | None = None) -> LabPaths:
    """Write the inventory and a fresh estate; ``estate``: the user's estate file (checked before anything is written)."""
    p = paths(directory)
    if p.inventory.exists() and not force:
        head = p.inventory.read_text(encoding="utf-8", errors="replace")[: len(MARKER)]
        if head != MARKER:
            raise UsageError(f"{p.inventory} exists and is not a lab inventory; use another directory or --force")
    source = estate or estatefile.default_path()
    loaded = estatefile.read(source)  # an invalid estate: exit 2, nothing written
    directory.mkdir(parents=True, exist_ok=True)
    p.state.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(18)
    fd = os.open(p.password, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(password + "\n")
    if serve is not None and serve.tls:
        from .wire import certs

        certs.generate(p.state.parent)
    copy = directory / ESTATE_COPY
    if estate is not None:
        # `lab reset` restores this estate, not the default one.
        copy.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    elif copy.exists():
        copy.unlink()
    p.inventory.write_text(serve_inventory(serve, loaded.inventory) if serve is not None
                           else local_inventory(loaded.inventory), encoding="utf-8")
    load_estate(p.state, password, estate)
    return p


def reset(state: Path, password_file: Path) -> None:
    if not state.parent.is_dir():
        raise UsageError(f"no lab at {state.parent}; run `hvauto lab init` first")
    password = password_file.read_text(encoding="utf-8").strip() if password_file.is_file() else secrets.token_urlsafe(18)
    copy = state.parent / Path(ESTATE_COPY).name
    load_estate(state, password, copy if copy.is_file() else None)
