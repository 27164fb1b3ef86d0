"""How long `hvauto --help` takes, and whether it stays free of the remoting libraries."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

HEAVY = ("pypsrp", "winrm", "requests")


def main(runs: int = 10) -> None:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "hvauto", "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "hvauto", "--help"],
                          capture_output=True, text=True, check=True)
    modules = [line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if "|" in line]
    heavy = [m for m in modules if m.split(".")[0] in HEAVY]
    print(f"hvauto --help: median {statistics.median(times) * 1000:.0f} ms over {runs} runs; "
          f"{len(modules)} modules imported; remoting libraries: {heavy or 'none'}")


if __name__ == "__main__":
    main()
