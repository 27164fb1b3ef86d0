"""The steps a command runs, declared once: what ``--render`` prints and what the real run follows.

Each operation that takes ``--render`` has a ``*_steps`` function next to its real run. It
validates its input exactly as the real run does (a bad value is the same error, exit 2) and
returns the :class:`Step` list: every template the run may send, to which host, in order, with
the parameters the real run builds through the same helper functions. A value that only an
earlier read gives is a :class:`~hvauto.render.Placeholder` (shown as ``<name>``; a real run
refuses it). A step the real run takes only in some cases says so in ``when``; a poll says how
it repeats. Building steps never contacts a host: :func:`render_steps` renders each one for the
version the inventory names (or the oldest supported, and says so).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import versions
from .render import Placeholder

if TYPE_CHECKING:
    from .script import Script
    from .session import Session


def ph(name: str) -> Placeholder:
    """A value that a read gives (``<name>`` in the rendered envelope)."""
    return Placeholder(name)


def placeholders_in(value: Any) -> list[str]:
    """Every placeholder in ``value`` (parameters, nested lists and objects), in order, each once."""
    found: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, Placeholder):
            if str(v) not in found:
                found.append(str(v))
        elif isinstance(v, Mapping):
            for item in v.values():
                walk(item)
        elif isinstance(v, (list, tuple)):
            for item in v:
                walk(item)

    walk(value)
    return found


@dataclass(frozen=True)
class Step:
    """One template the command runs on one host."""

    host: str
    template: str
    params: Mapping[str, Any] = field(default_factory=dict)
    #: What the step is for, in a few words ("read the destination", "start the move").
    purpose: str = ""
    #: When the real run takes this step; empty: always.
    when: str = ""
    #: How the step repeats (a poll); empty: once.
    repeat: str = ""

    @property
    def placeholders(self) -> list[str]:
        return placeholders_in(self.params)


@dataclass(frozen=True)
class RenderedStep:
    number: int
    step: Step
    script: Script
    #: The inventory gives no OS version: rendered for the oldest supported.
    assumed_version: bool

    @property
    def read_only(self) -> bool:
        return self.script.read_only

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.number,
            "host": self.step.host,
            "template": self.step.template,
            "version": self.script.version,
            "version_assumed": self.assumed_version,
            "purpose": self.step.purpose,
            "when": self.step.when or None,
            "repeat": self.step.repeat or None,
            "read_only": self.script.read_only,
            "placeholders": self.step.placeholders,
            "params": dict(self.script.params),
            "script": self.script.as_text(),
        }


def render_steps(session: Session, steps: Sequence[Step]) -> list[RenderedStep]:
    """Render every step for its host's known version; no host is contacted.

    A host whose version the inventory does not give is asked once by the real run (``host_facts``,
    PowerShell 3.0-safe) before the first step that depends on its version: that read comes first here.
    """
    probes = []
    for host in dict.fromkeys(session.host(s.host).name for s in steps):
        if session.known_version(host) is None and not any(
                s.template == "host_facts" and session.host(s.host).name == host for s in steps):
            probes.append(Step(host, "host_facts", {}, f"learn {host}'s Windows version (the inventory names none)",
                               when="once, when a later step depends on the host's version"))
    out = []
    for n, step in enumerate([*probes, *steps], start=1):
        cfg = session.host(step.host)
        version = session.known_version(cfg.name)
        assumed = version is None
        script = session.renderer.render(step.template, version or versions.OLDEST, step.params)
        out.append(RenderedStep(n, Step(cfg.name, step.template, step.params, step.purpose, step.when, step.repeat),
                                script, assumed))
    return out


__all__ = ["RenderedStep", "Step", "ph", "placeholders_in", "render_steps"]
