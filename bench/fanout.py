"""`vm list` across many lab hosts with injected latency: concurrency turns N x delay into ~delay."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from hvauto.inventory import load
from hvauto.lab import setup
from hvauto.lab.estate import _host, _hyperv
from hvauto.lab.transport import store_for
from hvauto.ops import vms
from hvauto.session import Session


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--delay", type=float, default=0.2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = setup.init(Path(tmp))
        names = [f"bench{i:02d}" for i in range(args.hosts)]
        store = store_for(str(paths.state))
        with store.transaction() as est:
            for i, name in enumerate(names):
                est.put("host", name, _host(name, "2022", ["hyperv"], 256, 32, rid=5000 + i,
                                            hyperv=_hyperv(enabled=True, auth="Kerberos", networks=[], os="2022")),
                        host=name)
        text = paths.inventory.read_text() + "".join(f'\n[hosts.{n}]\nroles = ["hyperv"]\nos = "2022"\n' for n in names)
        paths.inventory.write_text(text)
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
