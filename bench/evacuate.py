"""Evacuate 20 mixed VMs from one lab host to three, against the lab's model of the migration link.

    python bench/evacuate.py [--speed 20] [--estate bench/evacuate-estate.json]

The estate file names the source, the destinations (clones of one lab host), every host's
migration limit and the VMs. The lab moves a VM in (disk + memory) bytes / the host pair's
bandwidth, shared by the moves running out of the source when it starts, in lab time
(``hvauto lab speed``). The lower bound is the source's link kept busy all the time:
max(total bytes, the largest move) / bandwidth, in wall seconds at that speed.

The last line is ``vms=20 makespan=M bound=B ratio=R``.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from hvauto.inventory import load
from hvauto.lab import setup
from hvauto.lab.estate import MIGRATION_SERVICE, GiB, _spns, _vm
from hvauto.lab.handlers.migration import bandwidth
from hvauto.lab.store import LabStore
from hvauto.ops import evacuate
from hvauto.session import Session

HERE = Path(__file__).resolve().parent


def _clone(est: Any, template: str, name: str, n: int) -> None:
    """Copy every object of host ``template`` to a new host ``name`` (addresses .2n, its own SID)."""
    for kind in ("switch", "vnic", "adapter", "volume"):
        for obj in est.all(kind, host=template):
            new = json.loads(json.dumps(obj).replace(template, name))
            for key in ("addresses",):
                if key in new:
                    new[key] = [a.replace(".22/", f".{20 + n}/") for a in new[key]]
            est.put(kind, new["key"], new, host=name)
    host = copy.deepcopy(est.get("host", template))
    host.update(key=name, host=name, name=name, fqdn=host["fqdn"].replace(template, name),
                sid=host["sid"].rsplit("-", 1)[0] + f"-{1200 + n}")
    est.put("host", name, host, host=name)
    comp = copy.deepcopy(est.get("computer", template.lower()) or est.get("computer", template))
    comp.update(key=name, name=name, sam=f"{name}$", dns=comp["dns"].replace(template, name), sid=host["sid"])
    est.put("computer", name, comp)


def build(directory: Path, spec: dict[str, Any], speed: float) -> setup.LabPaths:
    paths = setup.init(directory)
    source, clone = spec["source"], spec["clone"]
    store = LabStore(paths.state)
    try:
        with store.transaction() as est:
            for vm in est.all("vm", host=source):
                est.delete("vm", vm["key"])
            for n, name in enumerate(d for d in spec["destinations"] if d != clone):
                _clone(est, clone, name, n + 3)
            for v in spec["vms"]:
                rec = _vm(source, v["name"], v["state"], v["memory_gib"], v["disk_gib"], used_gib=v["used_gib"],
                          switch="External", version="10.0")
                est.put("vm", rec["key"], rec, host=source)
            comp = est.get("computer", source)
            for d in spec["destinations"]:
                for spn in (*_spns(MIGRATION_SERVICE, d), *_spns("cifs", d)):
                    if spn not in comp["allowed_to_delegate_to"]:
                        comp["allowed_to_delegate_to"].append(spn)
            est.put("computer", source, comp)
            for h, limit in spec["limits"].items():
                rec = est.get("host", h)
                rec["hyperv"]["migration"].update(max_vm_migrations=limit, max_storage_migrations=limit)
                est.put("host", h, rec, host=h)
            est.set_meta("time_scale", str(speed))
    finally:
        store.close()
    extra = "".join(f'\n[hosts.{d}]\nroles = ["hyperv"]\nos = "2022"\n' for d in spec["destinations"]
                    if d != clone)
    paths.inventory.write_text(paths.inventory.read_text() + extra)
    return paths


def bound(paths: setup.LabPaths, spec: dict[str, Any], speed: float) -> float:
    store = LabStore(paths.state)
    try:
        with store.transaction() as est:
            bps = min(bandwidth(est, spec["source"], d) for d in spec["destinations"])
            sizes = [int(d["file_size"]) + (int(v["memory_startup"]) if v["state"] == "Running" else 0)
                     for v in est.all("vm", host=spec["source"]) for d in v["disks"]]
    finally:
        store.close()
    return max(sum(sizes), max(sizes)) / bps / speed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--speed", type=float, default=20.0, help="Lab time per wall second.")
    parser.add_argument("--estate", type=Path, default=HERE / "evacuate-estate.json")
    parser.add_argument("--poll-interval", type=float, default=1.0, help="As `hvauto evacuate --poll-interval`.")
    args = parser.parse_args()
    spec = json.loads(args.estate.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        paths = build(Path(tmp), spec, args.speed)
        low = bound(paths, spec, args.speed)
        with Session(load(paths.inventory)) as session:
            start = time.perf_counter()
            result = evacuate.evacuate(session, host=spec["source"], to=spec["destinations"],
                                       poll_interval=args.poll_interval)
            took = time.perf_counter() - start
        moved = [v for v in result.vms if v.status == "moved"]
        by_dest: dict[str, int] = {}
        for v in moved:
            by_dest[str(v.dest)] = by_dest.get(str(v.dest), 0) + 1
        assert len(moved) == len(spec["vms"]), [(v.vm, v.status, v.detail) for v in result.vms]
        print(f"moved {len(moved)} VMs at lab speed {args.speed:g}: " +
              ", ".join(f"{d} {n}" for d, n in sorted(by_dest.items())) +
              f"; {sum(v.bytes_moved for v in moved) / GiB:.0f} GiB")
        print(f"vms={len(moved)} makespan={took:.2f} bound={low:.2f} ratio={took / low:.2f}")


if __name__ == "__main__":
    main()
