"""A lab estate as data: a YAML file, checked against ``hvauto/schemas/estate.schema.json``.

``hvauto lab init`` loads ``hvauto/lab/estates/default.yaml``; ``--estate FILE`` loads the user's
own, to rehearse a move on a model of their estate. :func:`load` turns the document into the
lab store's objects (kinds ``host``, ``vm``, ``switch``, ``vnic``, ``adapter``, ``volume``,
``file``, ``share``, ``folder``, ``computer``, ``group``, ``link``): every problem is reported
at once as ``FILE:LINE: key: reason`` (exit 2), the schema's first, then what a schema cannot
say (a vNIC on a switch the host lacks, an account a share grants that AD does not know).
"""

from __future__ import annotations

import ntpath
import re
import uuid
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from hvauto import schemas, yamldoc
from hvauto.errors import ValidationError
from hvauto.text import read_file

from .estate import DOMAIN, DOMAIN_SID, NETBIOS, OS_INFO, GiB, vm_files
from .estate import _guid as guid

SCHEMA = "estate.schema.json"
WHAT = "lab estate"
_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": GiB, "TiB": 1024**4}
_SIZE = re.compile(r"^([0-9]+(?:\.[0-9]+)?) ?(B|KiB|MiB|GiB|TiB)$")
#: Well-known accounts a share or folder may name, by SID (as principals.WELL_KNOWN).
_WELL_KNOWN = {"everyone": "S-1-1-0", "nt authority\\authenticated users": "S-1-5-11",
               "authenticated users": "S-1-5-11", "nt authority\\system": "S-1-5-18", "system": "S-1-5-18",
               "builtin\\administrators": "S-1-5-32-544", "administrators": "S-1-5-32-544",
               "builtin\\users": "S-1-5-32-545", "users": "S-1-5-32-545"}
_FOLDER_RIGHTS = {"FullControl": "FullControl", "Modify": "Modify, Synchronize",
                  "ReadAndExecute": "ReadAndExecute, Synchronize"}


def default_path() -> Path:
    """The estate ``hvauto lab init`` loads when no ``--estate`` is given."""
    return Path(str(resources.files("hvauto.lab").joinpath("estates").joinpath("default.yaml")))


def size(value: Any) -> int:
    """``60 GiB`` or a number of bytes, as bytes (the schema has checked the form)."""
    if isinstance(value, int):
        return value
    m = _SIZE.match(str(value))
    assert m is not None, value
    return int(float(m.group(1)) * _UNITS[m.group(2)])


@dataclass
class Loaded:
    """The store's objects by kind, and the inventory's hosts: (name, roles, os or None = ask the host)."""

    objects: dict[str, list[dict[str, Any]]]
    inventory: list[tuple[str, tuple[str, ...], str | None]] = field(default_factory=list)


def read(path: str | Path) -> Loaded:
    """Read, validate and convert an estate file; ValidationError lists every problem with its line."""
    where = str(path)
    # Bounded as every input file is: a regular file of at most 1 MiB of UTF-8 (hvauto.text).
    return parse(read_file(path, what=WHAT), where)


def parse(text: str, where: str) -> Loaded:
    doc, lines = yamldoc.load(text, where, what=WHAT)
    found = schemas.validate(schemas.load(SCHEMA), doc)
    if not found:
        assert isinstance(doc, dict)
        found = _Builder(doc).check()
    if found:
        raise ValidationError([f"{where}:{yamldoc.line_of(lines, key)}: {schemas.dotted(key)}: {why}"
                               for key, why in sorted(found, key=lambda p: yamldoc.line_of(lines, p[0]))], what=WHAT)
    assert isinstance(doc, dict)
    return _Builder(doc).build()


Problem = tuple[tuple[str | int, ...], str]


class _Builder:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.hosts: list[dict[str, Any]] = list(doc["hosts"])
        self.rids: dict[str, int] = {}
        used = {int(h["rid"]) for h in self.hosts if "rid" in h} | {int(c["rid"]) for c in doc.get("computers") or []
                                                                    if "rid" in c}
        nxt = 1100
        for h in self.hosts:
            if "rid" in h:
                self.rids[h["name"].lower()] = int(h["rid"])
                continue
            while nxt in used:
                nxt += 1
            self.rids[h["name"].lower()] = nxt
            used.add(nxt)
        for c in doc.get("computers") or []:
            if c["name"].lower() not in self.rids:
                while nxt in used:
                    nxt += 1
                self.rids[c["name"].lower()] = int(c.get("rid", nxt))
                used.add(self.rids[c["name"].lower()])

    # -- what a schema cannot say -------------------------------------------------------------------------
    def check(self) -> list[Problem]:
        out: list[Problem] = []
        names: dict[str, int] = {}
        vm_ids: dict[tuple[str, str], tuple[int, int]] = {}
        for i, h in enumerate(self.hosts):
            name = h["name"].lower()
            if name in names:
                out.append((("hosts", i, "name"), f"{h['name']!r} is already host {names[name]}"))
            names[name] = i
            letters = [d["letter"].upper() for d in h.get("drives") or []]
            for j, letter in enumerate(letters):
                if letter in letters[:j]:
                    out.append((("hosts", i, "drives", j, "letter"), f"drive {letter} is listed twice"))
            switches = {s["name"].lower() for s in h.get("switches") or []}
            nics = {n["name"].lower() for n in h.get("nics") or []}
            for j, s in enumerate(h.get("switches") or []):
                for a in s.get("adapters") or []:
                    if a.lower() not in nics:
                        out.append((("hosts", i, "switches", j, "adapters"), f"{h['name']} has no NIC named {a!r}"))
            for j, v in enumerate(h.get("vnics") or []):
                if v["switch"].lower() not in switches:
                    out.append((("hosts", i, "vnics", j, "switch"), f"{h['name']} has no switch named {v['switch']!r}"))
            if h.get("vms") and "hyperv" not in h:
                out.append((("hosts", i, "vms"), f"{h['name']} has VMs but no hyperv settings (the Hyper-V role)"))
            for j, vm in enumerate(h.get("vms") or []):
                vm_id = str(vm.get("id") or guid(f"vm-{vm['name']}")).lower()
                if (name, vm_id) in vm_ids:
                    out.append((("hosts", i, "vms", j, "id"), f"{h['name']} already has a VM with id {vm_id}"))
                vm_ids[(name, vm_id)] = (i, j)
                for k, a in enumerate(vm.get("adapters") or []):
                    if a.get("switch") and a["switch"].lower() not in switches:
                        out.append((("hosts", i, "vms", j, "adapters", k, "switch"),
                                    f"{h['name']} has no switch named {a['switch']!r}"))
                for path in self._local_paths(h, vm):
                    letter = path[:1].upper()
                    if path[1:2] == ":" and letter not in letters:
                        out.append((("hosts", i, "vms", j), f"{path} is on drive {letter}:, which {h['name']} "
                                    "does not have"))
                        break
            for j, f in enumerate(h.get("files") or []):
                if f["path"][1:2] == ":" and f["path"][:1].upper() not in letters:
                    out.append((("hosts", i, "files", j, "path"), f"{h['name']} has no drive {f['path'][:1].upper()}:"))
            for j, share in enumerate(h.get("shares") or []):
                for key in ("access", "folder_access"):
                    for k, ace in enumerate(share.get(key) or []):
                        if self.sid_of(ace["account"]) is None:
                            out.append((("hosts", i, "shares", j, key, k, "account"),
                                        f"'{ace['account']}' is not an account of {NETBIOS} (a computer is "
                                        f"{NETBIOS}\\NAME$) nor a well-known one"))
        for i, link in enumerate(self.doc.get("links") or []):
            for h in link["hosts"]:
                if h.lower() not in names:
                    out.append((("links", i, "hosts"), f"no host named {h!r}"))
        return out

    def _local_paths(self, h: dict[str, Any], vm: dict[str, Any]) -> list[str]:
        rec = self.vm(h, vm)
        return [p for p in vm_files(rec) if not p.startswith("\\\\")]

    # -- accounts ---------------------------------------------------------------------------------------
    def sid_of(self, account: str) -> str | None:
        text = account.strip().lower()
        if text in _WELL_KNOWN:
            return _WELL_KNOWN[text]
        short = text.split("\\", 1)[1] if text.startswith(NETBIOS.lower() + "\\") else text
        if short == "administrator":
            return f"{DOMAIN_SID}-500"
        if short.endswith("$") and short[:-1] in self.rids and self._is_computer(short[:-1]):
            return f"{DOMAIN_SID}-{self.rids[short[:-1]]}"
        for g in self.doc.get("groups") or []:
            if g["name"].lower() == short:
                return f"{DOMAIN_SID}-{g['rid']}"
        return None

    def _is_computer(self, name: str) -> bool:
        return any(c["name"].lower() == name for c in self.doc.get("computers") or [])

    # -- objects ----------------------------------------------------------------------------------------
    def vm(self, h: dict[str, Any], vm: dict[str, Any]) -> dict[str, Any]:
        hv = h.get("hyperv") or {}
        vm_path = str(hv.get("vm_path") or r"D:\Hyper-V")
        vm_id = str(vm.get("id") or guid(f"vm-{vm['name']}")).lower()
        path = str(vm.get("path") or ntpath.join(vm_path, vm["name"]))
        mem = vm["memory"]
        startup = size(mem["startup"])
        disks = []
        for i, d in enumerate(vm.get("disks") or []):
            default = ntpath.join(path, "Virtual Hard Disks", f"{vm['name']}{'' if i == 0 else f'_{i}'}.vhdx")
            disk: dict[str, Any] = {"path": str(d.get("path") or default), "size": size(d["size"]),
                                    "file_size": size(d.get("used", d["size"]))}
            if d.get("parent"):
                disk["parent"] = _parent(d["parent"])
            disks.append(disk)
        out: dict[str, Any] = {
            "key": f"{h['name'].lower()}/{vm_id}",
            "host": h["name"],
            "id": vm_id,
            "name": vm["name"],
            "state": vm["state"],
            "cpu_count": int(vm.get("cpus", 2)),
            "memory_startup": startup,
            "generation": int(vm.get("generation", 2)),
            "version": vm["version"],
            "path": path,
            "clustered": bool(vm.get("clustered", False)),
            "passthrough_disks": list(vm.get("passthrough_disks") or []),
            "disks": disks,
            "adapters": [{"name": a.get("name", "Network Adapter"), "switch": a["switch"]}
                         for a in vm.get("adapters") or []],
        }
        if mem.get("dynamic"):
            out["memory_dynamic"] = True
            out["memory_minimum"] = size(mem.get("minimum", 512 * 1024**2))
            out["memory_maximum"] = size(mem.get("maximum", 1024**4))
            out["memory_assigned"] = size(mem.get("assigned", mem["startup"]))
        if vm.get("processor_compatibility"):
            out["processor_compatibility"] = True
        if vm.get("checkpoints"):
            out["checkpoints"] = [{"name": c["name"], "files": [{"path": f["path"], "file_size": size(f["size"])}
                                                                for f in c.get("files") or []]}
                                  for c in vm["checkpoints"]]
        if "saved_state" in vm:
            out["saved_state"] = size(vm["saved_state"])
        if vm.get("smart_paging_path"):
            out["smart_paging_path"] = vm["smart_paging_path"]
        if vm.get("iso"):
            out["iso"] = vm["iso"]
        if "lab_fail_migration" in vm:
            out["lab_fail_migration"] = int(vm["lab_fail_migration"])
        return out

    def build(self) -> Loaded:
        objects: dict[str, list[dict[str, Any]]] = {k: [] for k in (
            "host", "vm", "switch", "vnic", "adapter", "volume", "file", "share", "folder", "computer", "group",
            "link", "san_portal")}
        inventory = []
        for h in self.hosts:
            name = h["name"]
            build, caption, ps = OS_INFO[h["os"]]
            hv = h.get("hyperv")
            hyperv = None
            if hv is not None:
                mig = hv.get("migration") or {}
                networks = list(mig.get("networks") or [])
                hyperv = {
                    "vm_path": str(hv.get("vm_path") or r"D:\Hyper-V"),
                    "vhd_path": str(hv.get("vhd_path") or r"D:\Hyper-V\Virtual Hard Disks"),
                    "migration": {
                        "enabled": bool(mig.get("enabled", False)),
                        "auth_type": str(mig.get("auth", "CredSSP")),
                        "use_any_network": bool(mig.get("use_any_network", not networks)),
                        "networks": networks,
                        "max_vm_migrations": int(mig.get("max_vm_migrations", 2)),
                        "max_storage_migrations": int(mig.get("max_storage_migrations", 2)),
                        "performance_option": mig.get("performance", None if h["os"] == "2012" else "Compression"),
                    },
                }
            host: dict[str, Any] = {
                "key": name, "host": name, "name": name, "fqdn": f"{name}.{DOMAIN}", "domain": DOMAIN,
                "os": h["os"], "os_version": build, "caption": caption, "ps_version": ps,
                "roles": list(h.get("roles") or []),
                "memory_total": size(h.get("memory", 64 * GiB)),
                "memory_reserved": size(h.get("memory_reserved", 8 * GiB)),
                "logical_processors": int(h.get("logical_processors", 8)),
                "cpu_vendor": h.get("cpu_vendor", "GenuineIntel"),
                "sid": f"{DOMAIN_SID}-{self.rids[name.lower()]}",
                "hyperv": hyperv,
            }
            if h.get("cluster"):
                host["cluster"] = h["cluster"]
            for key in ("network", "clock_skew_seconds", "credential_guard", "winrm"):
                if key in h:
                    host[key] = h[key]
            if h.get("mpio"):
                host["mpio_installed"] = host["mpio_claim_iscsi"] = True
            objects["host"].append(host)
            inventory.append((name, tuple(host["roles"]), h["os"] if h.get("inventory_os", True) else None))
            tag = uuid.uuid5(uuid.NAMESPACE_DNS, name).bytes[0]
            for i, n in enumerate(h.get("nics") or [], start=1):
                nic: dict[str, Any] = {
                    "key": f"{name}/{n['name']}", "host": name, "name": n["name"],
                    "link_speed_bps": int(float(n.get("speed_gbps", 10)) * 10**9),
                    "driver": n.get("driver", "Microsoft Hyper-V Network Adapter"),
                    "mac": n.get("mac", f"00-15-5D-{tag:02X}-00-{i:02X}"), "status": n.get("status", "Up"),
                }
                if n.get("addresses"):
                    nic["addresses"] = list(n["addresses"])
                objects["adapter"].append(nic)
            for s in h.get("switches") or []:
                objects["switch"].append({
                    "key": f"{name}/{s['name']}", "host": name, "name": s["name"],
                    "id": guid(f"switch-{name}-{s['name']}"), "type": s.get("type", "External"),
                    "adapters": list(s.get("adapters") or []), "embedded_teaming": bool(s.get("embedded_teaming", False)),
                    "bandwidth_mode": s.get("bandwidth_mode", "Absolute"),
                    "allow_management_os": bool(s.get("management_os", True)),
                })
            for v in h.get("vnics") or []:
                objects["vnic"].append({"key": f"{name}/{v['name']}", "host": name, "name": v["name"],
                                        "switch": v["switch"], "weight": v.get("weight"), "vlan": v.get("vlan"),
                                        "addresses": list(v.get("addresses") or []), "gateway": v.get("gateway")})
            for d in h.get("drives") or []:
                letter = d["letter"].upper()
                objects["volume"].append({"key": f"{name}/{letter}", "host": name, "letter": letter,
                                          "size": size(d["size"]), "used_other": size(d.get("used", 0))})
            for vm in h.get("vms") or []:
                objects["vm"].append(self.vm(h, vm))
            for f in h.get("files") or []:
                objects["file"].append({"key": f"{name}/{f['path']}", "host": name, "path": f["path"],
                                        "file_size": size(f["size"])})
            for share in h.get("shares") or []:
                path = share["path"].rstrip("\\")
                access = [{"sid": self.sid_of(a["account"]), "type": a.get("type", "Allow"), "right": a["right"]}
                          for a in share.get("access") or []]
                objects["share"].append({
                    "key": f"{name}/{share['name']}", "host": name, "name": share["name"], "path": path,
                    "description": "", "scope_name": "*",
                    "continuously_available": bool(share.get("continuously_available", False)),
                    "encrypt_data": bool(share.get("encrypt_data", False)), "access": access})
                from .handlers.smb import CI_OI, INHERITED_DEFAULT

                explicit = [{"sid": self.sid_of(a["account"]), "rights": _FOLDER_RIGHTS[a["rights"]],
                             "type": a.get("type", "Allow"), "inherited": False, "inheritance": CI_OI,
                             "propagation": "None"} for a in share.get("folder_access") or []]
                objects["folder"].append({"key": f"{name}/{path}", "host": name, "path": path,
                                          "acl": [*explicit, *(dict(a) for a in INHERITED_DEFAULT)]})
        by_host = {h["name"].lower(): h for h in self.hosts}
        for c in self.doc.get("computers") or []:
            cname = c["name"]
            os = c.get("os") or (by_host.get(cname.lower()) or {}).get("os") or "2022"
            objects["computer"].append({
                "key": cname, "name": cname, "sam": f"{cname}$", "dns": f"{cname}.{DOMAIN}",
                "sid": f"{DOMAIN_SID}-{self.rids[cname.lower()]}", "os": os,
                "allowed_to_delegate_to": list(c.get("delegate_to") or []),
                "trusted_to_auth_for_delegation": bool(c.get("any_protocol", False)),
            })
        for g in self.doc.get("groups") or []:
            objects["group"].append({"key": g["name"], "name": g["name"], "sid": f"{DOMAIN_SID}-{g['rid']}",
                                     "members": list(g.get("members") or [])})
        from .handlers.migration import pair_key

        for san in self.doc.get("san") or []:
            objects["san_portal"].append({"key": san["portal"], "address": san["portal"], "targets": list(san["targets"])})
        for link in self.doc.get("links") or []:
            a, b = link["hosts"]
            objects["link"].append({"key": pair_key(a, b), "bandwidth_bps": float(link["bandwidth_gbps"]) * 10**9})
        return Loaded({k: v for k, v in objects.items() if v or k in ("host", "vm")}, inventory)


def _parent(p: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"path": p["path"], "file_size": size(p["used"])}
    if p.get("parent"):
        out["parent"] = _parent(p["parent"])
    return out
