"""Schedules: run a runbook unattended, from a systemd user timer or, without systemd, from cron.

``hvauto schedule add NAME --runbook FILE --at SPEC`` keeps the schedule in
``<config dir>/schedules/NAME.json`` and writes

* systemd (where it runs): ``hvauto-NAME.service`` (oneshot, ``hvauto schedule run NAME``) and
  ``hvauto-NAME.timer`` (``OnCalendar=``, ``Persistent=true``) into ``~/.config/systemd/user``
  (``$HVAUTO_SYSTEMD_DIR`` overrides); credentials come from the Kerberos ticket cache, the
  inventory's ``password_command``, or ``HVAUTO_USERNAME``/``HVAUTO_PASSWORD`` in the optional
  ``EnvironmentFile`` next to the schedule (mode 0600, never in the unit itself);
* cron (elsewhere): one line in the user's crontab (``$HVAUTO_CRONTAB_FILE`` stands in for
  ``crontab -l``/``crontab -``), tagged so ``remove`` finds it.

SPEC is a systemd calendar expression (``Mon..Fri 02:00``, ``daily``) or a cron line's five
fields (``0 2 * * 1-5``); each is converted to the other form where that is exact, and refused
with a reason where it is not. Nothing secret ever goes into a unit, a crontab line or the
schedule file: a secret-looking ``--var`` is refused.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hvauto.errors import ConfigError, NotFoundError, UsageError, ValidationError
from hvauto.inventory import config_dir
from hvauto.journal import secret_key, state_dir

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
MARK = "# hvauto schedule"
BACKENDS = ("systemd", "cron")


def schedules_dir() -> Path:
    return config_dir() / "schedules"


def systemd_dir() -> Path:
    explicit = os.environ.get("HVAUTO_SYSTEMD_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME")
    return (Path(base) if base else Path.home() / ".config") / "systemd" / "user"


def log_file(name: str) -> Path:
    return state_dir() / "logs" / f"schedule-{name}.jsonl"


def env_file(name: str) -> Path:
    return schedules_dir() / f"{name}.env"


def detect_backend() -> str:
    forced = os.environ.get("HVAUTO_SCHEDULER")
    if forced:
        if forced not in BACKENDS:
            raise ConfigError(f"HVAUTO_SCHEDULER must be one of {', '.join(BACKENDS)}, not {forced!r}")
        return forced
    # systemd is "present" when it is the running init (its runtime directory exists).
    if shutil.which("systemctl") and Path("/run/systemd/system").is_dir():
        return "systemd"
    return "cron"


# -- time specs ------------------------------------------------------------------------------------
_CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?|[A-Za-z]{3}(-[A-Za-z]{3})?)(/\d+)?(,(\*|\d+(-\d+)?|[A-Za-z]{3}(-[A-Za-z]{3})?)"
                         r"(/\d+)?)*$")
_CRON_SHORT = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
               "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}
_CAL_SHORT = {"minutely": "* * * * *", "hourly": "0 * * * *", "daily": "0 0 * * *", "weekly": "0 0 * * 1",
              "monthly": "0 0 1 * *", "yearly": "0 0 1 1 *", "annually": "0 0 1 1 *"}
_DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def is_cron(spec: str) -> bool:
    spec = spec.strip()
    if spec in _CRON_SHORT:
        return True
    fields = spec.split()
    return len(fields) == 5 and all(_CRON_FIELD.match(f) for f in fields)


def check_cron(spec: str) -> str:
    """The five fields, checked (numbers in range); shorthands expanded."""
    spec = _CRON_SHORT.get(spec.strip(), spec.strip())
    fields = spec.split()
    for f, (lo, hi), what in zip(fields, _RANGES, ("minute", "hour", "day of month", "month", "day of week"),
                                 strict=True):
        for n in re.findall(r"\d+", re.sub(r"/\d+", "", f)):
            if not lo <= int(n) <= hi:
                raise UsageError(f"--at {spec!r}: {what} {n} is out of range {lo}-{hi}")
    return " ".join(fields)


def cron_to_calendar(spec: str) -> str:
    """A cron line as an OnCalendar expression, where the meaning is the same."""
    minute, hour, dom, month, dow = check_cron(spec).split()
    if dom != "*" and dow != "*":
        raise UsageError(f"--at {spec!r}: cron runs when EITHER the day of month or the day of week matches, "
                         "systemd when both do; give a systemd calendar expression instead")

    def conv(f: str, lo: int) -> str:
        if f == "*":
            return "*"
        out = []
        for part in f.split(","):
            m = re.fullmatch(r"(\*|\d+)(?:-(\d+))?(?:/(\d+))?", part)
            if not m:
                raise UsageError(f"--at {spec!r}: cannot convert {part!r} to systemd; use a calendar expression")
            start, end, step = m.groups()
            if end and step:
                raise UsageError(f"--at {spec!r}: a stepped range {part!r} has no systemd form; use a calendar expression")
            first = lo if start == "*" else int(start)
            out.append(f"{first:02d}" + (f"..{int(end):02d}" if end else "") + (f"/{step}" if step else ""))
        return ",".join(out)

    days = ""
    if dow != "*":
        names = []
        for part in dow.split(","):
            m = re.fullmatch(r"(\d)(?:-(\d))?", part)
            if not m:
                raise UsageError(f"--at {spec!r}: cannot convert day of week {part!r}; use a calendar expression")
            a, b = int(m.group(1)) % 7, int(m.group(2)) % 7 if m.group(2) else None
            names.append(_DAYS[a] if b is None else f"{_DAYS[a]}..{_DAYS[b]}")
        days = ",".join(names) + " "
    return f"{days}*-{conv(month, 1)}-{conv(dom, 1)} {conv(hour, 0)}:{conv(minute, 0)}:00"


_CAL_RE = re.compile(
    r"^(?:(?P<dow>[A-Za-z]{3}(?:(?:\.\.|,)[A-Za-z]{3})*)\s+)?(?:\*-\*-\*\s+)?"
    r"(?P<h>\*|\d{1,2}(?:,\d{1,2})*):(?P<m>\d{1,2}(?:,\d{1,2})*)(?::00)?$")


def calendar_to_cron(spec: str) -> str:
    """An OnCalendar expression as cron fields: the shorthands and ``[DAYS] [*-*-*] HH:MM[:00]``."""
    s = spec.strip()
    if s.lower() in _CAL_SHORT:
        return _CAL_SHORT[s.lower()]
    m = _CAL_RE.match(s)
    if not m:
        raise UsageError(f"--at {spec!r}: this calendar expression has no exact cron form; give a cron line "
                         "(five fields, e.g. '0 2 * * 1-5') for hosts without systemd")
    dow = "*"
    if m.group("dow"):
        lower = [d.lower() for d in _DAYS]
        parts = []
        for chunk in m.group("dow").split(","):
            ends = chunk.split("..")
            try:
                nums = [lower.index(e.lower()) for e in ends]
            except ValueError:
                raise UsageError(f"--at {spec!r}: unknown day {chunk!r}") from None
            parts.append("-".join(str(n) for n in nums))
        dow = ",".join(parts)
    def numbers(text: str) -> str:
        return text if text == "*" else ",".join(str(int(x)) for x in text.split(","))

    return check_cron(f"{numbers(m.group('m'))} {numbers(m.group('h'))} * * {dow}")


def check_calendar(spec: str) -> str:
    """A calendar expression systemd accepts (asked of ``systemd-analyze`` when it is installed)."""
    tool = shutil.which("systemd-analyze")
    if tool:
        done = subprocess.run([tool, "calendar", spec], capture_output=True, text=True, timeout=30, check=False)
        if done.returncode != 0:
            raise UsageError(f"--at {spec!r}: not a systemd calendar expression: "
                             f"{done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'rejected'}",
                             hint="e.g. 'daily', 'Mon..Fri 02:00', '*-*-* 03:30:00', or a cron line '30 3 * * *'")
        for line in done.stdout.splitlines():
            if "Normalized form:" in line:
                return line.split("Normalized form:", 1)[1].strip()
        return spec
    if spec.strip().lower() in _CAL_SHORT or _CAL_RE.match(spec.strip()) or re.fullmatch(r"[\w*.,:/ -]+", spec):
        return spec.strip()
    raise UsageError(f"--at {spec!r}: not a calendar expression")


# -- the schedule ----------------------------------------------------------------------------------
@dataclass
class Schedule:
    name: str
    runbook: str
    at: str
    backend: str
    inventory: str
    calendar: str | None = None
    cron: str | None = None
    vars: dict[str, Any] = field(default_factory=dict)
    vars_files: list[str] = field(default_factory=list)
    limit: list[str] = field(default_factory=list)
    check: bool = False
    on_failure: str | None = None
    created: float = 0.0

    @property
    def unit(self) -> str:
        return f"hvauto-{self.name}"


def _no_structure(value: str, what: str) -> str:
    """``value`` as it may go into a unit or a crontab line: no character that ends a line or a field's structure.

    A newline (or CR, a vertical tab, any control character, U+2028/U+2029, NEL) in a path would
    start a new unit section or a second crontab line; such values are refused, never escaped.
    """
    bad = [ch for ch in value if unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch == "\x85"]
    if bad:
        raise UsageError(f"{what} {value!r}: holds a control character ({', '.join(repr(c) for c in sorted(set(bad)))}),"
                         " which would change the structure of a systemd unit or a crontab line; rename it")
    return value


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise UsageError(f"schedule name {name!r}: letters, digits, - and _ only (at most 64)")
    return name


def path_of(name: str) -> Path:
    return schedules_dir() / f"{check_name(name)}.json"


def load(name: str) -> Schedule:
    path = path_of(name)
    if not path.is_file():
        raise NotFoundError(f"no schedule named {name!r}", hint="`hvauto schedule list` shows the schedules")
    try:
        return Schedule(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"cannot read the schedule: {exc}", path=str(path)) from None


def all_schedules() -> list[Schedule]:
    d = schedules_dir()
    return [load(p.stem) for p in sorted(d.glob("*.json"))] if d.is_dir() else []


def make(name: str, *, runbook: Path, at: str, inventory: Path, backend: str | None = None,
         variables: dict[str, Any] | None = None, vars_files: list[Path] | None = None, limit: list[str] | None = None,
         check: bool = False, on_failure: str | None = None) -> Schedule:
    check_name(name)
    for what, value in (("the runbook's path", str(runbook.resolve())), ("the inventory's path", str(inventory.resolve())),
                        *(("--vars-file", str(p.resolve())) for p in vars_files or []),
                        *(("--limit", h) for h in limit or []), ("the Python interpreter", sys.executable),
                        ("hvauto's path", _pythonpath() or "")):
        _no_structure(value, what)
    backend = backend or detect_backend()
    secret = sorted(k for k in (variables or {}) if secret_key(k))
    if secret:
        raise ValidationError([f"--var {k}: secrets do not belong in a schedule (it is a plain file); use the "
                               "inventory's password_command, a Kerberos ticket, or the schedule's EnvironmentFile"
                               for k in secret], what="schedule")
    spec = at.strip()
    if not spec:
        raise UsageError("--at: give a systemd calendar expression or a cron line")
    if not spec.isascii() or not spec.isprintable():
        raise UsageError(f"--at {spec!r}: a calendar expression or cron line is printable ASCII")
    if on_failure is not None:
        try:
            argv = shlex.split(on_failure)
        except ValueError as exc:
            raise UsageError(f"--on-failure: cannot split it into a command line: {exc}") from None
        if not argv or not on_failure.isprintable():
            raise UsageError("--on-failure: give a command (a program and its arguments) on one line")
    cron: str | None
    calendar: str | None
    if is_cron(spec):
        cron = check_cron(spec)
        calendar = check_calendar(cron_to_calendar(spec)) if backend == "systemd" else None
    else:
        calendar = check_calendar(spec) if backend == "systemd" else None
        cron = calendar_to_cron(spec) if backend == "cron" else None
    return Schedule(name=name, runbook=str(runbook.resolve()), at=spec, backend=backend,
                    inventory=str(inventory.resolve()), calendar=calendar, cron=cron, vars=dict(variables or {}),
                    vars_files=[str(p.resolve()) for p in vars_files or []], limit=list(limit or []), check=check,
                    on_failure=on_failure, created=time.time())


def command(s: Schedule) -> list[str]:
    """The argv a timer or cron runs: no secret, no variable value (they are in the schedule file)."""
    return [sys.executable, "-m", "hvauto", "--inventory", s.inventory, "schedule", "run", s.name]


def _pythonpath() -> str | None:
    """Where hvauto is imported from, when that is not the interpreter's own site-packages (a checkout)."""
    import hvauto

    root = Path(hvauto.__file__).resolve().parent.parent
    return None if "site-packages" in root.parts or "dist-packages" in root.parts else str(root)


def run_environment() -> dict[str, str]:
    """The settings a scheduled run needs to find what ``schedule add`` wrote, resolved now.

    A timer or cron runs in a clean environment (no ``HVAUTO_CONFIG_DIR`` or ``HVAUTO_STATE_DIR``
    from the shell that added it): the schedule's file, the journal and the logs must be the same
    ones, so each directory goes into the unit (or the cron line) by its absolute path.
    """
    env = {"HVAUTO_CONFIG_DIR": str(config_dir().resolve()), "HVAUTO_STATE_DIR": str(state_dir().resolve())}
    for var in ("HVAUTO_LOG_DIR", "HVAUTO_CACHE_DIR"):
        if os.environ.get(var):
            env[var] = str(Path(os.environ[var]).resolve())
    return env


def _systemd_quote(arg: str) -> str:
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _joined(lines: list[str]) -> str:
    """A unit's or crontab's text, each of hvauto's lines still one line (defence in depth after make())."""
    if any(ch in line for line in lines for ch in "\n\r\x0b\x0c\x85\u2028\u2029"):
        raise UsageError("a schedule value would change the structure of its unit or crontab line; nothing was written")
    return "\n".join(lines)


def units(s: Schedule) -> dict[str, str]:
    """The service and timer for a systemd schedule."""
    assert s.calendar
    for what, value in (("the runbook's path", s.runbook), ("the inventory's path", s.inventory),
                        ("the calendar", s.calendar), ("the Python interpreter", sys.executable)):
        _no_structure(value, what)
    exec_start = " ".join(_systemd_quote(a) for a in command(s))
    env = ["Environment=PYTHONUNBUFFERED=1"]
    pp = _pythonpath()
    if pp:
        env.append(f"Environment={_systemd_quote('PYTHONPATH=' + pp)}")
    env += [f"Environment={_systemd_quote(f'{k}={v}')}" for k, v in run_environment().items()]
    service = _joined([
        "# Written by `hvauto schedule add`; `hvauto schedule remove " + s.name + "` deletes it.",
        "[Unit]",
        f"Description=hvauto runbook {s.name} ({Path(s.runbook).name.replace('%', '%%')})",
        "",
        "[Service]",
        "Type=oneshot",
        f"WorkingDirectory={_systemd_quote(str(Path(s.inventory).parent))}",
        *env,
        "# HVAUTO_USERNAME / HVAUTO_PASSWORD, if you use them, go in this file (mode 0600), never here.",
        f"EnvironmentFile=-{_systemd_quote(str(env_file(s.name)))}",
        f"ExecStart={exec_start}",
        "",
    ])
    timer = _joined([
        "# Written by `hvauto schedule add`.",
        "[Unit]",
        f"Description=Timer for hvauto runbook {s.name}",
        "",
        "[Timer]",
        f"OnCalendar={s.calendar.replace('%', '%%')}",
        "Persistent=true",
        f"Unit={s.unit}.service",
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
    ])
    return {f"{s.unit}.service": service, f"{s.unit}.timer": timer}


def cron_line(s: Schedule) -> str:
    assert s.cron
    for what, value in (("the inventory's path", s.inventory), ("the cron line", s.cron),
                        ("the Python interpreter", sys.executable)):
        _no_structure(value, what)
    pp = _pythonpath()
    prefix = f"PYTHONPATH={shlex.quote(pp)} " if pp else ""
    prefix += "".join(f"{k}={shlex.quote(v)} " for k, v in run_environment().items())
    argv = " ".join(shlex.quote(a) for a in command(s))
    cmd = f"cd {shlex.quote(str(Path(s.inventory).parent))} && {prefix}{argv} >/dev/null"
    return _joined([f"{s.cron} {cmd.replace('%', chr(92) + '%')} {MARK} {s.name}"])


# -- crontab ----------------------------------------------------------------------------------------
def read_crontab() -> str:
    path = os.environ.get("HVAUTO_CRONTAB_FILE")
    if path:
        p = Path(path)
        return p.read_text(encoding="utf-8") if p.is_file() else ""
    tool = shutil.which("crontab")
    if not tool:
        raise ConfigError("neither systemd nor crontab is available to schedule runs",
                          hint="install cron; or write the systemd units anyway with `--backend systemd` (or "
                               "HVAUTO_SCHEDULER=systemd) and enable them where systemd runs")
    done = subprocess.run([tool, "-l"], capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        if "no crontab" in done.stderr.lower():
            return ""
        raise ConfigError(f"crontab -l failed: {done.stderr.strip()}")
    return done.stdout


def write_crontab(text: str) -> None:
    path = os.environ.get("HVAUTO_CRONTAB_FILE")
    if path:
        Path(path).write_text(text, encoding="utf-8")
        return
    tool = shutil.which("crontab")
    assert tool
    done = subprocess.run([tool, "-"], input=text, capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise ConfigError(f"crontab - failed: {done.stderr.strip()}")


def _without(text: str, name: str) -> str:
    lines = [ln for ln in text.splitlines() if not ln.rstrip().endswith(f"{MARK} {name}")]
    return "\n".join(lines) + ("\n" if lines else "")


# -- install / remove --------------------------------------------------------------------------------
def _systemctl(*args: str) -> str | None:
    """Run ``systemctl --user``; None when that worked, else why not."""
    tool = shutil.which("systemctl")
    if not tool:
        return "systemctl not found"
    done = subprocess.run([tool, "--user", *args], capture_output=True, text=True, timeout=60, check=False)
    return None if done.returncode == 0 else (done.stderr.strip() or f"exit {done.returncode}")


@dataclass
class Installed:
    schedule: Schedule
    files: list[Path]
    notes: list[str]


def install(s: Schedule, *, enable: bool) -> Installed:
    files: list[Path] = []
    notes: list[str] = []
    if s.backend == "systemd":
        d = systemd_dir()
        d.mkdir(parents=True, exist_ok=True)
        for fname, text in units(s).items():
            (d / fname).write_text(text, encoding="utf-8")
            files.append(d / fname)
        if enable:
            for args in (("daemon-reload",), ("enable", "--now", f"{s.unit}.timer")):
                why = _systemctl(*args)
                if why:
                    notes.append(f"systemctl --user {' '.join(args)}: {why}; run it yourself when the user manager "
                                 "is up (and `loginctl enable-linger` to run while logged out)")
                    break
        else:
            notes.append(f"enable it with: systemctl --user daemon-reload && systemctl --user enable --now "
                         f"{s.unit}.timer")
    else:
        text = _without(read_crontab(), s.name) + cron_line(s) + "\n"
        write_crontab(text)
        files.append(Path(os.environ.get("HVAUTO_CRONTAB_FILE") or "crontab"))
    p = path_of(s.name)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(asdict(s), indent=2) + "\n", encoding="utf-8")
    return Installed(s, files, notes)


def remove(name: str, *, enable: bool) -> list[str]:
    s = load(name)
    notes: list[str] = []
    if s.backend == "systemd":
        if enable:
            why = _systemctl("disable", "--now", f"{s.unit}.timer")
            if why:
                notes.append(f"systemctl --user disable --now {s.unit}.timer: {why}")
        for fname in (f"{s.unit}.service", f"{s.unit}.timer"):
            (systemd_dir() / fname).unlink(missing_ok=True)
        if enable:
            _systemctl("daemon-reload")
    else:
        write_crontab(_without(read_crontab(), s.name))
    path_of(name).unlink()
    return notes


def notify_failure(s: Schedule, summary: dict[str, Any]) -> str | None:
    """Run the schedule's on-failure command with the run summary (JSON) on stdin; None when it worked."""
    if not s.on_failure:
        return None
    env = {**os.environ, "HVAUTO_SCHEDULE": s.name, "HVAUTO_RUN_ID": str(summary.get("run", "")),
           "HVAUTO_RUN_STATE": str(summary.get("state", ""))}
    env.pop("HVAUTO_PASSWORD", None)
    try:
        done = subprocess.run(shlex.split(s.on_failure), input=json.dumps(summary), text=True, capture_output=True,
                              timeout=120, env=env, cwd=str(Path(s.inventory).parent), check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"on_failure command could not run: {type(exc).__name__}"
    return None if done.returncode == 0 else f"on_failure command exited {done.returncode}"
