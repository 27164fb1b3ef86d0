"""How fast hvauto starts, against the floor of its own CLI library.

    python bench/startup.py [--runs 20]

Each figure is the median wall time of ``--runs`` fresh interpreters, beside the same for
``python -c "import typer"`` in the same venv (what any Typer CLI pays before its first line):

- ``hvauto --help``: start-up alone (goal: at most 1.3x);
- ``hvauto vm list`` on the in-process lab (a lab inventory in a temporary directory): a whole
  command, from start to a rendered table (goal: at most 2.5x).

It also checks that ``--help`` imports none of the remoting libraries. The last line is
``help_ratio=R1 vm_list_ratio=R2 typer_ms=T help_ms=H vm_list_ms=V``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("pypsrp", "winrm", "requests", "logging", "jinja2", "yaml", "tenacity", "jsonschema")


def _median(argv: list[str], runs: int, env: dict[str, str], cwd: str | None = None) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True, env=env, cwd=cwd)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
    env.pop("HVAUTO_INVENTORY", None)
    # As from an installed wheel (pip compiles its bytecode): the warm-up run below writes it for a checkout.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([py, "-m", "hvauto", "lab", "init", tmp], capture_output=True, check=True, env=env, cwd=tmp)
        # Warm the file cache and the bytecode once, so that no figure pays for a first compile.
        for argv in ([py, "-c", "import typer"], [py, "-m", "hvauto", "--help"], [py, "-m", "hvauto", "vm", "list"]):
            subprocess.run(argv, capture_output=True, check=True, env=env, cwd=tmp)
        typer_s = _median([py, "-c", "import typer"], args.runs, env)
        help_s = _median([py, "-m", "hvauto", "--help"], args.runs, env)
        vm_s = _median([py, "-m", "hvauto", "vm", "list"], args.runs, env, cwd=tmp)
    done = subprocess.run([py, "-X", "importtime", "-m", "hvauto", "--help"],
                          capture_output=True, text=True, check=True, env=env)
    modules = [line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if "|" in line]
    heavy = sorted({m.split(".")[0] for m in modules if m.split(".")[0] in HEAVY})
    print(f"python -c 'import typer': {typer_s * 1000:.0f} ms; hvauto --help: {help_s * 1000:.0f} ms "
          f"({len(modules)} modules; of {', '.join(HEAVY)}: {', '.join(heavy) or 'none'}); "
          f"hvauto vm list (in-process lab): {vm_s * 1000:.0f} ms; median of {args.runs} runs")
    print(f"help_ratio={help_s / typer_s:.2f} vm_list_ratio={vm_s / typer_s:.2f} typer_ms={typer_s * 1000:.0f} "
          f"help_ms={help_s * 1000:.0f} vm_list_ms={vm_s * 1000:.0f}")


if __name__ == "__main__":
    main()
