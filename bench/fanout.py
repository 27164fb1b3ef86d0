"""`vm list` across many lab hosts with injected latency: concurrency turns N x delay into ~delay."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from hvauto.inventory import load
from hvauto.lab import setup
from hvauto.lab.transport import store_for
from hvauto.ops import vms
from hvauto.session import Session


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--delay", type=float, default=0.2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        names = [f"bench{i:02d}" for i in range(args.hosts)]
        # The estate is data: N Hyper-V hosts, each a few lines of YAML.
        estate = Path(tmp) / "estate.yaml"
        estate.write_text("hosts:\n" + "".join(
            f'  - {{name: {n}, os: "2022", roles: [hyperv], memory: 256 GiB, logical_processors: 32, rid: {5000 + i},'
            " hyperv: {migration: {enabled: true, auth: Kerberos}}}\n" for i, n in enumerate(names)),
            encoding="utf-8")
        paths = setup.init(Path(tmp) / "lab", estate=estate)
        store = store_for(str(paths.state))
        for name in names:
            store.set_fault(name, delay=args.delay)
        inv = load(paths.inventory)
        with Session(inv, max_workers=args.hosts) as session:
            start = time.perf_counter()
            group = vms.list_many(session, names)
            took = time.perf_counter() - start
        assert group.ok
        print(f"vm list on {args.hosts} hosts with {args.delay:.2f}s latency each: {took:.2f}s "
              f"(sequential would be {args.hosts * args.delay:.2f}s)")


if __name__ == "__main__":
    main()
