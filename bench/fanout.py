"""`vm list` across many lab hosts with injected latency: concurrency turns N x delay into ~delay.

    python bench/fanout.py --hosts 200 --delay 0.02 --wire
    python bench/fanout.py --hosts 16 --delay 0.2            # the in-process lab

With ``--wire`` the hosts are reached over real PSRP on TLS through ``hvauto lab serve``,
started as its own process (so its CPU is not the controller's), and every WS-Management
request waits ``--delay`` seconds first. The lower bound is what the server counted:
requests per host x delay, all hosts in parallel. ``cpu_ms_per_host`` is this process's
CPU time (every thread) for the fan-out, open to close, divided by the hosts.

The last line is ``hosts=N delay=S wall=W bound=B ratio=R cpu_ms_per_host=C``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hvauto.inventory import load
from hvauto.lab import estatefile, setup
from hvauto.lab.store import LabStore
from hvauto.ops import vms
from hvauto.session import Session


def _add_hosts(paths: setup.LabPaths, names: list[str], *, wire: bool, delay: float) -> None:
    store = LabStore(paths.state)
    try:
        # The estate is data: N Hyper-V hosts, each one line of YAML.
        hosts = estatefile.parse("hosts:\n" + "".join(
            f'  - {{name: {n}, os: "2022", roles: [hyperv], memory: 256 GiB, logical_processors: 32, rid: {5000 + i},'
            " hyperv: {migration: {enabled: true, auth: Kerberos}}}\n" for i, n in enumerate(names)), "bench").objects
        with store.transaction() as est:
            for host in hosts["host"]:
                est.put("host", host["name"], host, host=host["name"])
        for name in names:
            store.set_fault(name, delay=delay)
    finally:
        store.close()
    path = '\npath = "wsman/{n}"' if wire else ""
    text = paths.inventory.read_text() + "".join(
        f'\n[hosts.{n}]{path.format(n=n)}\nroles = ["hyperv"]\nos = "2022"\n' for n in names)
    paths.inventory.write_text(text)


def _serve(paths: setup.LabPaths) -> tuple[subprocess.Popen[str], int]:
    """``hvauto lab serve --port 0`` in its own process; returns it and the port it listens on."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                        os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-m", "hvauto", "-i", str(paths.inventory), "lab", "serve", "--port", "0"],
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    found = re.search(r"127\.0\.0\.1:(\d+)/", line)
    if not found:
        proc.kill()
        raise SystemExit(f"hvauto lab serve did not start: {line!r}")
    return proc, int(found.group(1))


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=16)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--wire", action="store_true", help="Real PSRP over TLS through `hvauto lab serve`.")
    parser.add_argument("--forks", type=int, default=None, help="Hosts at once (default: the session's).")
    parser.add_argument("--profile", metavar="FILE", help="Write a cProfile of the fan-out to FILE.")
    args = parser.parse_args()
    names = [f"bench{i:03d}" for i in range(args.hosts)]
    with tempfile.TemporaryDirectory() as tmp:
        paths = setup.init(Path(tmp), serve=setup.ServeOptions(tls=True) if args.wire else None)
        _add_hosts(paths, names, wire=args.wire, delay=args.delay)
        server = None
        if args.wire:
            server, port = _serve(paths)
            text = paths.inventory.read_text()
            paths.inventory.write_text(text.replace(f"port = {setup.ServeOptions(tls=True).effective_port}",
                                                    f"port = {port}"))
        try:
            inv = load(paths.inventory)
            # The back-end's import is start-up (bench/startup.py), not fan-out: paid once, before the clock.
            t0 = time.perf_counter()
            importlib.import_module("hvauto.remote.psrp" if args.wire else "hvauto.lab.transport")
            imported = time.perf_counter() - t0
            kw = {"max_workers": args.forks} if args.forks else {}
            profiler = None
            if args.profile:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            server_cpu0 = _cpu_seconds(server.pid) if server is not None else 0.0
            cpu0, start = time.process_time(), time.perf_counter()
            with Session(inv, **kw) as session:  # type: ignore[arg-type]
                group = vms.list_many(session, names)
            took, cpu = time.perf_counter() - start, time.process_time() - cpu0
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(args.profile)
        finally:
            server_cpu = 0.0
            if server is not None:
                server_cpu = _cpu_seconds(server.pid)
                server.send_signal(signal.SIGTERM)
                server.communicate(timeout=60)
        assert group.ok, group.failed()
        if args.wire:
            store = LabStore(paths.state)
            counted = sum(n for h, _a, _s, n in store.request_counts() if h in {x.lower() for x in names})
            store.close()
            per_host = counted / args.hosts
        else:
            per_host = 1.0  # one script per host, one delay each
        bound = per_host * args.delay
        print(f"requests per host: {per_host:g}; sequential would be {args.hosts * bound:.2f}s; "
              f"importing the back-end first took {imported * 1000:.0f} ms; "
              f"the server's CPU: {(server_cpu - server_cpu0) / args.hosts * 1000:.1f} ms per host")
        print(f"hosts={args.hosts} delay={args.delay:g} wall={took:.2f} bound={bound:.2f} "
              f"ratio={took / bound if bound else float('nan'):.2f} cpu_ms_per_host={cpu / args.hosts * 1000:.1f}")


if __name__ == "__main__":
    main()
