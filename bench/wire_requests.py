"""WS-Management requests and time per step, for each back-end, against `hvauto lab serve` on loopback.

    python -m bench.wire_requests --steps 1 10 50

The counts are the ones in the README's design notes (psrp: 2 + 3N on one reused pool;
winrm: 6N, a shell per step); tests/wire/test_request_count.py keeps them from drifting.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from hvauto.inventory import load
from hvauto.lab import setup
from hvauto.lab.wire import certs
from hvauto.lab.wire.server import TLSFiles, WireServer
from hvauto.remote.retry import NO_RETRY
from hvauto.session import Session


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--template", default="vm_list")
    args = parser.parse_args()
    for backend in ("psrp", "winrm"):
        for tls in (True, False):
            with tempfile.TemporaryDirectory() as tmp:
                paths = setup.init(Path(tmp), serve=setup.ServeOptions(tls=tls))
                files = certs.files(paths.state.parent)
                server = WireServer(paths.state, tls=TLSFiles(files.cert, files.key) if tls else None).start()
                try:
                    port = setup.ServeOptions(tls=tls).effective_port
                    text = paths.inventory.read_text().replace(f"port = {port}", f"port = {server.port}")
                    paths.inventory.write_text(text.replace('transport = "psrp"', f'transport = "{backend}"'))
                    for n in args.steps:
                        server.reset_counts()
                        start = time.perf_counter()
                        with Session(load(paths.inventory), retry=NO_RETRY) as session:
                            for _ in range(n):
                                session.run("hostA", args.template)
                        took = time.perf_counter() - start
                        counts = dict(sorted((a, c) for (_, a), c in server.request_counts().items()))
                        print(f"{backend:5} {'tls ' if tls else 'http'} N={n:<3} requests={sum(counts.values()):<4} "
                              f"{took / n * 1000:6.1f} ms/step  {counts}")
                finally:
                    server.stop()


if __name__ == "__main__":
    main()
