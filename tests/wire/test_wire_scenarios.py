"""Every command, run in sequence through the real CLI against the in-process lab and the wire lab.

Outputs must match once the values that differ between any two runs are taken out: elapsed
times, job ids, run ids and timestamps, and progress events (how many a watcher sees depends
on timing, not on the transport).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Lab, hv
from tests.wire.conftest import WireLab

pytestmark = [pytest.mark.slow, pytest.mark.wire]

ROOT = Path(__file__).resolve().parents[2]
POLL = ["--poll-interval", "0.05"]

#: Steps run one after the other on both labs (mutating steps change both estates alike).
SCENARIO: list[list[str]] = [
    ["lab", "speed", "5000"],
    ["migrate", "--shared-nothing", "vm01", "hostB", "-o", "json", *POLL],
    ["migrate", "--shared-nothing", "vm01", "hostB", "-o", "json", *POLL],  # already there: a no-op
    ["migrate", "--live", "vm01", "hostA", "-o", "json", *POLL],  # refused: its storage is local
    ["storage", "move", "vm02", "D:\\VMs\\vm02", "--host", "hostA", "-o", "json", *POLL],
    ["evacuate", "hostA", "--what-if", "-o", "json"],
    ["evacuate", "hostA", "-o", "json", *POLL],
    ["vm", "list", "-o", "json"],
    ["vm", "show", "web01", "--no-moves", "-o", "json"],
    ["switch", "list", "-o", "json"],
    ["switch", "create", "Lab Private", "--type", "private", "--hosts", "hostB", "-o", "json"],
    ["switch", "remove", "Lab Private", "--hosts", "hostB", "-o", "json"],
    ["runbook", "validate", str(ROOT / "playbooks" / "vm-report.yml")],
    ["runbook", "run", str(ROOT / "playbooks" / "vm-report.yml"), "-o", "json"],
    ["runbook", "history", "-o", "json"],
]
#: Commands that never contact a host (covered by their own tests, nothing to compare on the wire).
LOCAL = {"lab", "schedule", "runbook schema", "runbook show", "fabric validate"}
#: Commands whose wire cases live in other modules of this directory.
ELSEWHERE = {"fabric plan": "test_fabric_wire.py", "fabric apply": "test_fabric_wire.py",
             "smb share": "test_smb_wire.py", "delegation grant": "test_smb_wire.py",
             "delegation show": "test_smb_wire.py", "delegation revoke": "test_smb_wire.py",
             "host list": "test_wire.py", "host show": "test_wire.py", "host migration": "test_fabric_wire.py",
             "switch create": "test_fabric_wire.py", "doctor": "test_doctor_wire.py"}

_VOLATILE = re.compile(r"(elapsed|seconds|job_id|run_id|^id$|^ts$|^run$|started|ended|finished|at$|_at$|time|duration|journal)")


def scrub(value: Any) -> Any:
    if isinstance(value, dict):
        if isinstance(value.get("error"), str) and "message" in value:
            # A transport error: its class must match; its text and hint name the address, port and library.
            value = {k: v for k, v in value.items() if k not in ("message", "hint")}
        return {k: scrub(v) for k, v in value.items() if not _VOLATILE.search(k) and k not in ("address", "transport")}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


def comparable(out: str) -> Any:
    docs = []
    for line in out.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            docs.append(re.sub(r"\d+(\.\d+)?s\b", "<t>", line))
            continue
        if isinstance(doc, dict) and doc.get("event") == "progress":
            continue
        docs.append(scrub(doc))
    if len(docs) == 1 and not isinstance(docs[0], str):
        return docs[0]
    try:
        return scrub(json.loads(out))
    except ValueError:
        # JSON lines from hosts that run concurrently come in either order.
        return sorted(json.dumps(d, sort_keys=True) for d in docs)


def test_the_scenario_gives_the_same_results_over_the_wire(lab: Lab, wire: WireLab) -> None:
    for argv in SCENARIO:
        here = hv("-i", str(lab.paths.inventory), *argv)
        there = hv("-i", str(wire.inventory_path), *argv)
        assert there.code == here.code, (argv, here.err, there.err)
        assert "Traceback" not in there.err
        assert comparable(there.out) == comparable(here.out), argv
    assert wire.store.calls(template="migrate_start") == lab.store.calls(template="migrate_start") > 0


def test_every_host_command_has_a_wire_case() -> None:
    """A new command must join a wire case (here or in a sibling module) or be declared local."""
    import typer.main

    from hvauto.cli.main import app

    covered = ({" ".join(a[:2]) for a in SCENARIO} | {a[0] for a in SCENARIO} | set(ELSEWHERE)
               | {"vm list", "runbook resume"})
    missing = []
    for noun, cmd in typer.main.get_command(app).commands.items():  # type: ignore[attr-defined]
        verbs = getattr(cmd, "commands", None)
        names = [noun] if not verbs else [f"{noun} {v}" for v in verbs]
        for name in names:
            if name in covered or noun in LOCAL or name in LOCAL:
                continue
            missing.append(name)
    assert not missing, f"commands without a wire case: {missing}"
    here = Path(__file__).parent
    for name, module in ELSEWHERE.items():
        assert f'"{name.split()[-1]}"' in (here / module).read_text(), (name, module)


def test_a_partial_runbook_run_resumes_alike(lab: Lab, wire: WireLab) -> None:
    """`runbook resume` re-runs only what failed (hostB was down), on both labs alike."""
    book = str(ROOT / "playbooks" / "vm-report.yml")
    outcomes = []
    for inv in (str(lab.paths.inventory), str(wire.inventory_path)):
        assert hv("-i", inv, "lab", "fault", "hostB", "--down").code == 0
        first = hv("-i", inv, "--retries", "1", "runbook", "run", book, "-o", "json")
        assert first.code == 9, first.err
        run = next(json.loads(line)["run"] for line in first.out.splitlines() if '"run.started"' in line)
        assert hv("-i", inv, "lab", "fault", "hostB", "--up").code == 0
        again = hv("-i", inv, "runbook", "resume", str(run), "-o", "json")
        assert again.code == 0, again.err
        outcomes.append((comparable(first.out), comparable(again.out)))
    assert outcomes[0] == outcomes[1]
