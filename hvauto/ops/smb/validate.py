"""A share request checked before any remote call: share names, local paths, accounts and hosts."""

from __future__ import annotations

import re
from collections.abc import Sequence

from hvauto.inventory import HostConfig, Inventory
from hvauto.ops.targets import check_domain_host

EVERYONE = "S-1-1-0"


SHARE_NAME_MAX = 80  # NNLEN


PATH_MAX = 247  # a directory's path must leave room for an 8.3 file name under MAX_PATH


_BAD_SHARE_CHARS = '\\/:*?"<>|'


_BAD_PATH_CHARS = '<>:"/|?*'


_SID_RE = re.compile(r"S-1-[0-9]+(-[0-9]+)+", re.I)  # used with fullmatch: a trailing newline is no SID


_RESERVED_SHARES = {"IPC$", "ADMIN$", "PRINT$"}


def share_name_problems(name: str) -> list[str]:
    if not name:
        return ["the share name is empty"]
    problems = []
    bad = sorted({c for c in name if c in _BAD_SHARE_CHARS or ord(c) < 32})
    if bad:
        shown = " ".join(repr(c) if ord(c) < 32 else c for c in bad)
        problems.append(f"share name {name!r} contains {shown}: a share name cannot contain "
                        f'\\ / : * ? " < > | or control characters')
    if len(name) > SHARE_NAME_MAX:
        problems.append(f"share name {name!r} is {len(name)} characters long; Windows allows at most {SHARE_NAME_MAX}")
    if name != name.strip():
        problems.append(f"share name {name!r} starts or ends with a space")
    if name.upper() in _RESERVED_SHARES or re.fullmatch(r"[A-Za-z]\$", name):
        problems.append(f"{name!r} is an administrative share that Windows manages itself")
    return problems


def local_path_problems(path: str) -> list[str]:
    if not path:
        return ["the folder path is empty"]
    if path.startswith(("\\\\", "//")):
        return [f"{path!r} is a UNC path; give the folder's local path on the file server (like D:\\Shares\\VMs)"]
    if not re.match(r"^[A-Za-z]:\\", path):
        return [f"{path!r} is not an absolute local path on the file server (expected like D:\\Shares\\VMs)"]
    problems = []
    rest = path[3:]
    bad = sorted({c for c in rest if c in _BAD_PATH_CHARS or ord(c) < 32})
    if bad:
        problems.append(f"path {path!r} contains {' '.join(bad)}, which Windows does not allow in a folder name")
    parts = [p for p in rest.split("\\") if p]
    if any(p in (".", "..") for p in parts):
        problems.append(f"path {path!r} contains . or .. ; give the folder's full path")
    if any(p != p.rstrip(" .") for p in parts):
        problems.append(f"path {path!r} has a folder name ending in a space or a dot, which Windows strips")
    if not parts:
        problems.append(f"{path!r} is the root of a volume; share a folder on it (like {path[:3]}Shares\\VMs)")
    if len(path) > PATH_MAX:
        problems.append(f"path {path!r} is longer than {PATH_MAX} characters")
    return problems


def expand_hosts(inv: Inventory, names: Sequence[str], problems: list[str]) -> list[HostConfig]:
    """Hyper-V hosts named directly or through an inventory group, each checked."""
    out: list[HostConfig] = []
    if not names:
        problems.append("no hosts given (--hosts H1,H2)")
    for name in names:
        members = inv.groups.get(name, [name])
        for member in members:
            cfg = check_domain_host(inv, member, problems, role="hyperv")
            if cfg is not None and cfg.name not in (c.name for c in out):
                out.append(cfg)
    return out


def qualify(inv: Inventory, account: str) -> str:
    """``Hyper-V Admins`` -> ``LAB\\Hyper-V Admins``; qualified names and SIDs stay as given."""
    account = account.strip()
    if "\\" in account or _SID_RE.fullmatch(account):
        return account
    return f"{inv.netbios}\\{account}"


def account_problems(account: str) -> list[str]:
    if not account.strip():
        return ["an account name is empty"]
    if any(ord(c) < 32 for c in account) or account.count("\\") > 1:
        return [f"{account!r} is not an account name (expected DOMAIN\\name, name or a SID)"]
    return []
