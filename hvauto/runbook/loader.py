"""Load a runbook with the line of every value, and find every problem in it before any remote call.

``validate`` checks, in order: YAML syntax; the structure against the shipped JSON Schema;
each step's operation (known? a typo gets a suggestion), its options (known, required, typed);
every Jinja2 value and ``when`` (syntax, variables defined by the runbook, the inventory,
``--var``/``--vars-file``, or an earlier step's ``register``); hosts, groups and roles in the
inventory; and a ``powershell`` step's template (header, declared parameters). Each problem is
``FILE:LINE: reason``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hvauto import yamldoc
from hvauto.errors import NotFoundError, ValidationError
from hvauto.inventory import Inventory

from . import custom, schema, templating
from .operations import OPERATIONS, Operation, Option

STEP_KEYS = ("name", "hosts", "forks", "when", "register", "retries", "retry_delay", "continue_on_error")
#: Names every value may use besides the runbook's variables and registered results.
BUILTINS = frozenset({"host", "inventory", "check_mode", "run", "runbook", "omit"})
#: An option rendered to this is left out, as if the step had not given it (``"{{ to or omit }}"``).
OMIT = "__hvauto_omit__"
DEFAULT_FORKS = 5

Key = tuple[str | int, ...]


def load_yaml(text: str, source: str) -> tuple[Any, dict[Key, int]]:
    return yamldoc.load(text, source, what="runbook")


@dataclass
class Step:
    index: int
    name: str
    op: str
    options: dict[str, Any]
    hosts: Any = None
    forks: int | None = None
    when: Any = None
    register: str | None = None
    retries: int = 0
    retry_delay: float = 5.0
    continue_on_error: bool = False

    @property
    def operation(self) -> Operation:
        return OPERATIONS[self.op]


@dataclass
class Runbook:
    path: Path
    text: str
    name: str
    description: str = ""
    vars: dict[str, Any] = field(default_factory=dict)
    target: Any = None
    forks: int = DEFAULT_FORKS
    steps: list[Step] = field(default_factory=list)
    lines: dict[Key, int] = field(default_factory=dict)
    #: Every step's ``register`` by step index, also of steps that did not parse (fewer false alarms).
    registers: dict[int, str] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def line(self, *path: str | int) -> int:
        key: Key = tuple(path)
        while key and key not in self.lines:
            key = key[:-1]
        return self.lines.get(key, 1)

    def where(self, *path: str | int) -> str:
        return f"{self.path}:{self.line(*path)}"


def _op_key(raw: Mapping[str, Any]) -> list[str]:
    return [k for k in raw if k not in STEP_KEYS]


def parse(text: str, path: Path) -> tuple[Runbook, list[str]]:
    """The runbook and the structural problems found (schema, operations, options)."""
    data, lines = load_yaml(text, str(path))
    rb = Runbook(path=path, text=text, name="", lines=lines)
    if data is None:
        return rb, [f"{path}:1: the runbook is empty"]
    problems = [f"{rb.where(*p)}: {'/'.join(map(str, p)) + ': ' if p else ''}{why}"
                for p, why in schema.errors(data, schema.base_schema())]
    if not isinstance(data, dict):
        return rb, problems
    rb.name = str(data.get("name") or path.stem)
    rb.description = str(data.get("description") or "")
    rb.vars = dict(data["vars"]) if isinstance(data.get("vars"), dict) else {}
    rb.target = data.get("target")
    rb.forks = data["forks"] if isinstance(data.get("forks"), int) else DEFAULT_FORKS
    steps: list[Any] = data["steps"] if isinstance(data.get("steps"), list) else []
    for i, raw in enumerate(steps):
        if not isinstance(raw, dict):
            continue
        if isinstance(raw.get("register"), str):
            rb.registers[i] = raw["register"]
        keys = _op_key(raw)
        where = rb.where("steps", i)
        if not keys:
            problems.append(f"{where}: step {i + 1} names no operation (one of: {', '.join(sorted(OPERATIONS))})")
            continue
        unknown = [k for k in keys if k not in OPERATIONS]
        for k in unknown:
            close = difflib.get_close_matches(k, [*OPERATIONS, *STEP_KEYS], n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(sorted(OPERATIONS))})"
            problems.append(f"{rb.where('steps', i, k)}: unknown operation {k!r}{hint}")
        known = [k for k in keys if k in OPERATIONS]
        if len(known) > 1:
            problems.append(f"{where}: one operation per step; this one names {', '.join(known)}")
        if len(known) != 1 or unknown:
            continue
        op = known[0]
        options = raw[op]
        if options is None:
            options = {}
        if not isinstance(options, dict):
            problems.append(f"{rb.where('steps', i, op)}: {op}: options must be a mapping of option: value")
            continue
        problems += _check_options(rb, i, OPERATIONS[op], options)
        rb.steps.append(Step(
            index=i,
            name=str(raw.get("name") or op),
            op=op,
            options=dict(options),
            hosts=raw.get("hosts"),
            forks=raw.get("forks") if isinstance(raw.get("forks"), int) else None,
            when=raw.get("when"),
            register=raw.get("register") if isinstance(raw.get("register"), str) else None,
            retries=raw["retries"] if isinstance(raw.get("retries"), int) else 0,
            retry_delay=float(raw["retry_delay"]) if isinstance(raw.get("retry_delay"), (int, float)) else 5.0,
            continue_on_error=raw.get("continue_on_error") is True,
        ))
    return rb, problems


def _type_ok(opt: Option, value: Any) -> str | None:
    """Why a literal value does not fit its option's type, or None."""
    t = opt.type
    ok = {
        "str": isinstance(value, str),
        "path": isinstance(value, str) and bool(value),
        "host": isinstance(value, str) and bool(value),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "map": isinstance(value, dict),
        "str[]": isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)),
        "host[]": isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)),
    }[t]
    if not ok:
        return f"expected {t}, got {schema._describe(value)}"
    if opt.choices and value not in opt.choices:
        return f"{value!r} is not one of {', '.join(opt.choices)}"
    return None


def _check_options(rb: Runbook, i: int, op: Operation, options: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    for k, v in options.items():
        where = rb.where("steps", i, op.name, k)
        opt = op.options.get(k)
        if opt is None:
            close = difflib.get_close_matches(k, list(op.options), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else f"options: {', '.join(op.options) or 'none'}"
            if k == op.host_option:
                hint = "the hosts come from the step's `hosts` (or the runbook's `target`)"
            problems.append(f"{where}: {op.name}: unknown option {k!r} ({hint})")
            continue
        if templating.is_templated(v):
            continue
        why = _type_ok(opt, v)
        if why:
            problems.append(f"{where}: {op.name}: option {k!r}: {why}")
    for k, opt in op.options.items():
        if opt.required and k not in options:
            problems.append(f"{rb.where('steps', i, op.name)}: {op.name}: missing required option {k!r}")
    return problems


def load(path: Path) -> Runbook:
    """Read and parse, raising every structural problem at once."""
    text = read_text(path)
    rb, problems = parse(text, path)
    if problems:
        raise ValidationError(problems, what="runbook")
    return rb


def read_text(path: Path, what: str = "runbook") -> str:
    """A UTF-8 file's text; unreadable, not UTF-8, too large or not a regular file is a validation problem."""
    return yamldoc.read_file(path, what=what)


def inventory_vars(inventory: Inventory) -> dict[str, Any]:
    """The inventory's ``[settings.vars]`` table (site values: share paths, admin groups ...)."""
    value = inventory.settings.get("vars", {})
    return dict(value) if isinstance(value, dict) else {}


def inventory_view(inventory: Inventory) -> dict[str, Any]:
    """What runbook expressions see as ``inventory``."""
    roles: dict[str, list[str]] = {}
    for name, cfg in inventory.hosts.items():
        for role in cfg.roles:
            roles.setdefault(role, []).append(name)
    return {"hosts": list(inventory.hosts), "groups": {k: list(v) for k, v in inventory.groups.items()},
            "roles": roles}


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def check_targets(inventory: Inventory, targets: Iterable[str]) -> list[str]:
    """Why each target (host, group, role:NAME, comma lists) is not in the inventory."""
    problems: list[str] = []
    for target in targets:
        for part in (p.strip() for p in target.split(",")):
            if not part:
                continue
            if part.startswith("role:"):
                if not inventory.with_role(part[5:]):
                    problems.append(f"no host in the inventory has role {part[5:]!r}")
                continue
            if part in inventory.groups:
                continue
            try:
                inventory.host(part)
            except NotFoundError:
                close = difflib.get_close_matches(part, [*inventory.hosts, *inventory.groups], n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(f"unknown host or group {part!r}: not in {inventory.path.name}{hint}")
    return problems


def variables_for(rb: Runbook, inventory: Inventory, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Runbook defaults < the inventory's [settings.vars] < --vars-file / --var."""
    return {**rb.vars, **inventory_vars(inventory), **overrides}


def validate(rb: Runbook, inventory: Inventory, overrides: Mapping[str, Any], *,
             limit: Iterable[str] = ()) -> list[str]:
    """Every semantic problem (variables, hosts, templates); the structure was checked by :func:`parse`."""
    problems: list[str] = []
    values = variables_for(rb, inventory, overrides)
    for name in sorted(set(values) & BUILTINS):
        problems.append(f"{rb.where('vars', name)}: {name!r} is reserved (it is set by the run itself: "
                        f"{', '.join(sorted(BUILTINS))}); call the variable something else")
    for name, value in values.items():
        if value is None:
            problems.append(f"{rb.where('vars', name)}: variable {name!r} has no value: give it with --var {name}=... "
                            "or --vars-file, or in the inventory's [settings.vars]")
    static_ctx = {**values, "inventory": inventory_view(inventory), "check_mode": False,
                  "run": {"id": 0}, "runbook": {"name": rb.name}, "omit": OMIT}
    limit = list(limit)
    problems += [f"--limit: {p}" for p in check_targets(inventory, limit)]

    def targets(where_path: Key, value: Any, defined: set[str]) -> None:
        """Check a hosts value; render it when it uses only variables known now."""
        if not isinstance(value, (str, list)):
            return  # the schema said what is wrong with it
        used = _vars(where_path, value, defined)
        if used is None:
            return
        if used & (defined - set(static_ctx)) or "host" in used:
            return  # depends on an earlier step's result: checked when the step runs
        try:
            rendered = templating.render(value, static_ctx)
        except templating.RenderError as exc:
            problems.append(f"{rb.where(*where_path)}: {exc.message}")
            return
        problems.extend(f"{rb.where(*where_path)}: {p}"
                        for p in check_targets(inventory, [t for t in _as_list(rendered) if t != OMIT]))

    def _vars(where_path: Key, value: Any, defined: set[str], *, expression: bool = False) -> set[str] | None:
        try:
            used = templating.variables(value, expression=expression)
        except templating.RenderError as exc:
            problems.append(f"{rb.where(*where_path)}: {exc.message}")
            return None
        for name in sorted(used - defined):
            close = difflib.get_close_matches(name, sorted(defined - BUILTINS), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"{rb.where(*where_path)}: undefined variable {name!r}{hint}")
        return used

    defined = set(values) | BUILTINS
    if rb.target is not None:
        targets(("target",), rb.target, defined)
    registered: set[str] = set()
    parsed = {s.index for s in rb.steps}
    for step in rb.steps:
        i, op = step.index, step.operation
        for j, name in rb.registers.items():
            if j < i and j not in parsed:
                registered.add(name)
                defined.add(name)
        if step.hosts is not None and not op.fans_out:
            problems.append(f"{rb.where('steps', i, 'hosts')}: {op.name} runs once per step and names its hosts in "
                            "its options; remove `hosts` from this step")
        elif step.hosts is not None:
            targets(("steps", i, "hosts"), step.hosts, defined)
        elif op.fans_out and rb.target is None:
            problems.append(f"{rb.where('steps', i)}: step {step.name!r}: no hosts (give the step `hosts` or the "
                            "runbook a `target`)")
        if isinstance(step.when, str):
            _vars(("steps", i, "when"), step.when, defined, expression=True)
        for k, v in step.options.items():
            used = _vars(("steps", i, op.name, k), v, defined)
            opt = op.options.get(k)
            if opt is None or used is None:
                continue
            if opt.type in ("host", "host[]") and not (used & (registered | {"host"})):
                try:
                    rendered = templating.render(v, static_ctx)
                except templating.RenderError:
                    continue
                problems.extend(f"{rb.where('steps', i, op.name, k)}: {p}"
                                for p in check_targets(inventory, [t for t in _as_list(rendered) if t != OMIT]))
        if step.op == "powershell":
            problems += _check_powershell(rb, step)
        if step.register:
            if step.register in registered or step.register in values or step.register in BUILTINS:
                problems.append(f"{rb.where('steps', i, 'register')}: {step.register!r} is already a variable "
                                "or registered by an earlier step")
            registered.add(step.register)
            defined.add(step.register)
    return problems


def _check_powershell(rb: Runbook, step: Step) -> list[str]:
    where = rb.where("steps", step.index, "powershell", "template")
    template = step.options.get("template")
    if not isinstance(template, str) or templating.is_templated(template):
        return [f"{where}: powershell: template must be a literal path (it is checked before the run)"]
    path = resolve_path(rb, template)
    meta, problems = custom.check(path)
    if meta is None:
        return [f"{where}: {p}" for p in problems]
    # The template's own problems, at its own lines (meta.path is the resolved file; say it as the runbook does).
    code = [p.replace(str(meta.path.parent), str(path.parent), 1) if meta.path else p for p in custom.check_code(meta)]
    params = step.options.get("params") or {}
    if not isinstance(params, dict):
        return code
    templated = {k for k, v in params.items() if templating.is_templated(v)}
    where = rb.where("steps", step.index, "powershell", "params")
    return [*code, *(f"{where}: {p}" for p in custom.check_params(meta, params, templated=templated))]


def problem_order(problem: str) -> tuple[int, str]:
    """Sort ``FILE:LINE: reason`` problems by line (others first, in the order found)."""
    parts = problem.split(":", 2)
    return (int(parts[1]), "") if len(parts) == 3 and parts[1].isdigit() else (0, "")


def resolve_path(rb: Runbook, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (rb.base_dir / p)


def parse_var(text: str) -> tuple[str, Any]:
    """``k=v`` from ``--var``; the value is read as YAML (numbers, true/false, lists) when it parses."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise ValidationError([f"--var {text.split('=')[0]!r}: expected NAME=VALUE"], what="variables")
    try:
        value = yamldoc.safe_load(raw, f"--var {name}", what="variables") if raw.strip() else ""
    except yamldoc.Refused:
        raise  # an alias bomb is refused, not taken as text
    except ValidationError:
        value = raw
    if isinstance(value, (dict, list, int, float, bool)) or value is None:
        return name, value if value is not None else raw
    return name, raw


def overrides(var: Iterable[str], vars_files: Iterable[Path]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in vars_files:
        text = read_text(path, "vars file")
        data = yamldoc.safe_load(text, str(path), what="vars file")
        if not isinstance(data, dict):
            raise ValidationError([f"{path}: a vars file is a mapping of name: value"], what="variables")
        out.update({str(k): v for k, v in data.items()})
    for text in var:
        k, v = parse_var(text)
        out[k] = v
    return out
