"""``hvauto lab init`` and ``hvauto lab reset``: write the lab's inventory and a fresh estate."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from hvauto.errors import UsageError

from .estate import DOMAIN, NETBIOS, default_estate
from .store import LabStore

MARKER = "# hvauto lab inventory"
STATE = "lab/estate.db"
PASSWORD_FILE = "lab/password"

INVENTORY = f"""{MARKER}, written by `hvauto lab init`.
# The hosts below are simulated: the `lab` transport answers every script from the estate
# in {STATE} (SQLite). `hvauto lab reset` restores the estate; `hvauto lab fault` injects faults.
# The lab accepts your (simulated) Kerberos ticket; the password in {PASSWORD_FILE} is for
# LAB\\Administrator when you try the password paths (HVAUTO_USERNAME / HVAUTO_PASSWORD).

[settings]
netbios = "{NETBIOS}"

[defaults]
transport = "lab"
lab_state = "{STATE}"
auth = "kerberos"
domain = "{DOMAIN}"

[hosts.dc01]
roles = ["ad"]
os = "2022"

[hosts.fs01]
roles = ["fileserver"]
os = "2022"

[hosts.hostA]
roles = ["hyperv"]
os = "2022"

[hosts.hostB]
roles = ["hyperv"]
os = "2022"

# No `os` here on purpose: hvauto asks the host (one PowerShell 3.0-safe round trip).
[hosts.hv12]
roles = ["hyperv"]

[groups]
hyperv = ["hostA", "hostB", "hv12"]
"""


@dataclass(frozen=True)
class LabPaths:
    inventory: Path
    state: Path
    password: Path


def paths(directory: Path) -> LabPaths:
    return LabPaths(directory / "hvauto.toml", directory / STATE, directory / PASSWORD_FILE)


def load_estate(state: Path, password: str) -> None:
    objects = default_estate()
    objects["account"] = [
        {"key": f"{NETBIOS}\\Administrator".lower(), "name": f"{NETBIOS}\\Administrator", "password": password},
        {"key": f"Administrator@{DOMAIN}".lower(), "name": f"Administrator@{DOMAIN}", "password": password},
    ]
    store = LabStore(state)
    try:
        store.load(objects, {"domain": DOMAIN, "netbios": NETBIOS, "time_scale": "1.0"})
    finally:
        store.close()


def init(directory: Path, *, force: bool = False) -> LabPaths:
    p = paths(directory)
    if p.inventory.exists() and not force:
        head = p.inventory.read_text(encoding="utf-8", errors="replace")[: len(MARKER)]
        if head != MARKER:
            raise UsageError(f"{p.inventory} exists and is not a lab inventory; use another directory or --force")
    directory.mkdir(parents=True, exist_ok=True)
    p.state.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(18)
    fd = os.open(p.password, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(password + "\n")
    p.inventory.write_text(INVENTORY, encoding="utf-8")
    load_estate(p.state, password)
    return p


def reset(state: Path, password_file: Path) -> None:
    if not state.parent.is_dir():
        raise UsageError(f"no lab at {state.parent}; run `hvauto lab init` first")
    password = password_file.read_text(encoding="utf-8").strip() if password_file.is_file() else secrets.token_urlsafe(18)
    load_estate(state, password)
