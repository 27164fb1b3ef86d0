"""The one result model every operation reports in, and the one JSON serialiser.

A change is data (:class:`Change`), not a sentence: what-if lists the changes the real run
then makes (the same list), the CLI prints them, ``-o json`` and the runbook journal carry
them. A host's outcome is a :class:`HostResult` (its changes, problems, warnings, or its
error); many hosts make a :class:`Report`, whose exit code :func:`hvauto.errors.exit_code`
decides. Problems are :class:`hvauto.errors.Problem`.

    Report
    ├── what_if, problems (group-wide), warnings
    └── hosts: {HOST: HostResult(changes: [Change], problems, warnings, error)}
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from hvauto.errors import HostOutcome, HostsFailedError, HvautoError, Problem

if TYPE_CHECKING:
    from hvauto.session import GroupResult


@dataclass(frozen=True)
class Change:
    """One thing an operation changes (or, in what-if, would change)."""

    action: str
    target: str
    detail: str = ""
    disruptive: bool = False

    def __str__(self) -> str:
        return f"{self.action} {self.target}" + (f": {self.detail}" if self.detail else "")


@dataclass
class HostResult:
    """One host's outcome: the changes made (or planned), problems found, or the error it failed with."""

    host: str
    changes: list[Change] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: HvautoError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def changed(self) -> bool:
        return self.ok and bool(self.changes)


R = TypeVar("R", bound=HostResult)


@dataclass
class Report(Generic[R]):
    """Many hosts' results; one failed host fails the command with every host's outcome still reported."""

    what_if: bool = False
    hosts: dict[str, R] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def changes(self) -> list[Change]:
        return [c for r in self.hosts.values() if r.ok for c in r.changes]

    @property
    def changed(self) -> bool:
        return any(r.changed for r in self.hosts.values())

    @property
    def blocking(self) -> list[Problem]:
        every = [*self.problems, *(p for r in self.hosts.values() for p in r.problems)]
        seen: list[Problem] = []
        for p in every:
            if p.blocking and p not in seen:
                seen.append(p)
        return seen

    @property
    def total(self) -> int:
        return len(self.hosts)

    def failures(self) -> dict[str, HvautoError]:
        return {h: r.error for h, r in self.hosts.items() if r.error is not None}

    def add(self, group: GroupResult, empty: Callable[[str], R]) -> None:
        """Every host of a fan-out: its result, or an ``empty(host)`` result carrying its error."""
        for h, outcome in group.outcomes.items():
            if outcome.ok:
                self.hosts[h] = outcome.value
            else:
                result = empty(h)
                result.error = outcome.error
                self.hosts[h] = result

    def raise_if_failed(self) -> None:
        """One failed host fails the command (HostsFailedError, every host's outcome inside)."""
        failed = self.failures()
        if failed and len(self.hosts) == 1:
            raise next(iter(failed.values()))  # one host: its own error says more than "1 of 1 failed"
        if failed:
            raise HostsFailedError({h: HostOutcome(h, r.ok, r.error, r) for h, r in self.hosts.items()})


def count(n: int, word: str) -> str:
    """``1 change``, ``3 changes``: a number and its noun, in the right number."""
    return f"{n} {word}" + ("" if n == 1 else "s")


def changes_text(changes: Iterable[Change]) -> list[str]:
    return [str(c) for c in changes]


def to_jsonable(value: Any) -> Any:
    """Plain JSON data for any result: dataclasses (with their ``changed``/``ok`` properties), errors, enums.

    The one serialiser: the CLI's ``-o json`` and the runbook journal both use it. A property
    named ``changed`` or ``ok`` is part of a result's meaning, so it is kept even though it is
    not a field; values JSON cannot hold become their text.
    """
    if isinstance(value, HvautoError):
        return value.to_dict()
    if isinstance(value, Problem):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)
               if not f.name.startswith("_")}
        for prop in ("ok", "changed"):
            if prop not in out and isinstance(getattr(type(value), prop, None), property):
                out[prop] = bool(getattr(value, prop))
        return out
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


__all__ = ["count", "Change", "HostResult", "Problem", "Report", "changes_text", "to_jsonable"]
