"""Render PowerShell templates: Jinja2 decides the shape, values stay data.

Each ``templates/NAME.ps1.j2`` opens with a metadata comment::

    {#- hvauto
    summary: List the VMs on a Hyper-V host.
    targets: [2012, 2012r2, 2016, 2019, 2022, 2025]
    idempotent: true
    params:
      Name: {type: "string[]", doc: "exact VM names; every VM when empty"}
    output: '{"vms": [...]}'
    -#}

The Jinja context holds only *shape*: the target ``version`` (and ``at_least``), the
template's ``meta``. Values never reach Jinja; they are validated against ``params``
here and bound to the script's ``param()`` block by the transport. A version-specific
file ``NAME.2012r2.ps1.j2`` wins over ``NAME.ps1.j2`` for that version.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml

from . import versions
from .errors import TemplateError, UsageError
from .remote.base import Script

_META_RE = re.compile(r"\A\s*\{#-?\s*hvauto\s*\n(?P<yaml>.*?)-?#\}", re.S)
PARAM_TYPES = ("string", "string[]", "int", "int[]", "bool", "switch")


def template_dirs() -> list[Path]:
    """Templates ship inside the wheel (``hvauto/templates``); a source checkout has ``templates/``."""
    here = Path(__file__).resolve().parent
    found = [p for p in (here / "templates", here.parent / "templates") if p.is_dir()]
    return found[:1]


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: str
    required: bool = False
    doc: str = ""


@dataclass(frozen=True)
class TemplateMeta:
    name: str
    summary: str
    targets: tuple[str, ...]
    params: Mapping[str, ParamSpec] = field(default_factory=dict)
    output: str = ""
    idempotent: bool = True
    depth: int = 8
    path: Path | None = None


def _parse_meta(name: str, source: str, path: Path | None) -> TemplateMeta:
    match = _META_RE.match(source)
    if not match:
        raise TemplateError(f"template {name!r} has no '{{#- hvauto' metadata header")
    try:
        raw = yaml.safe_load(match.group("yaml")) or {}
    except yaml.YAMLError as exc:
        raise TemplateError(f"template {name!r}: bad metadata header: {exc}") from None
    targets = tuple(versions.normalize(t) for t in raw.get("targets", versions.OS_VERSIONS))
    params: dict[str, ParamSpec] = {}
    for pname, spec in (raw.get("params") or {}).items():
        spec = spec or {}
        ptype = str(spec.get("type", "string"))
        if ptype not in PARAM_TYPES:
            raise TemplateError(f"template {name!r}: parameter {pname}: unknown type {ptype!r}")
        params[pname] = ParamSpec(pname, ptype, bool(spec.get("required", False)), str(spec.get("doc", "")))
    return TemplateMeta(
        name=name,
        summary=str(raw.get("summary", "")),
        targets=targets,
        params=params,
        output=str(raw.get("output", "")),
        idempotent=bool(raw.get("idempotent", True)),
        depth=int(raw.get("depth", 8)),
        path=path,
    )


def _coerce(template: str, spec: ParamSpec, value: Any) -> Any:
    def fail(why: str) -> TemplateError:
        return TemplateError(f"{template}: parameter {spec.name} ({spec.type}): {why}")

    if spec.type == "string":
        if not isinstance(value, str):
            raise fail(f"expected a string, got {type(value).__name__}")
        return value
    if spec.type == "string[]":
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise fail("expected a list of strings")
        if not all(isinstance(v, str) for v in value):
            raise fail("expected a list of strings")
        return list(value)
    if spec.type == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail(f"expected an integer, got {type(value).__name__}")
        return value
    if spec.type == "int[]":
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise fail("expected a list of integers")
        if any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            raise fail("expected a list of integers")
        return list(value)
    if spec.type in ("bool", "switch"):
        if not isinstance(value, bool):
            raise fail(f"expected true or false, got {type(value).__name__}")
        return value
    raise fail("unknown type")  # pragma: no cover - _parse_meta rejects it


class Renderer:
    """A Jinja2 environment over the template directories (StrictUndefined: a typo is an error)."""

    def __init__(self, extra_dirs: Sequence[Path] = ()) -> None:
        self.dirs = [*extra_dirs, *template_dirs()]
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(d) for d in self.dirs]),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.tests["at_least"] = lambda version, minimum: versions.at_least(version, str(minimum))

    def names(self) -> list[str]:
        found: set[str] = set()
        for d in self.dirs:
            for p in d.glob("*.ps1.j2"):
                stem = p.name[: -len(".ps1.j2")]
                if stem.startswith("_") or "." in stem:
                    continue
                found.add(stem)
        return sorted(found)

    @functools.cache  # noqa: B019 - one renderer per process; templates do not change
    def meta(self, name: str) -> TemplateMeta:
        if not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise TemplateError(f"bad template name {name!r}")
        for d in self.dirs:
            path = d / f"{name}.ps1.j2"
            if path.is_file():
                return _parse_meta(name, path.read_text(encoding="utf-8"), path)
        raise TemplateError(f"no template named {name!r}")

    def _file_for(self, name: str, version: str) -> str:
        for d in self.dirs:
            if (d / f"{name}.{version}.ps1.j2").is_file():
                return f"{name}.{version}.ps1.j2"
        return f"{name}.ps1.j2"

    def bind(self, name: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """Check values against the template's declared parameters; drop None (= not given)."""
        meta = self.meta(name)
        given = {k: v for k, v in (params or {}).items() if v is not None}
        unknown = sorted(set(given) - set(meta.params))
        if unknown:
            raise TemplateError(f"{name}: no such parameter(s): {', '.join(unknown)}")
        missing = sorted(p for p, s in meta.params.items() if s.required and p not in given)
        if missing:
            raise TemplateError(f"{name}: missing required parameter(s): {', '.join(missing)}")
        return {k: _coerce(name, meta.params[k], v) for k, v in given.items()}

    def render(self, name: str, version: str, params: Mapping[str, Any] | None = None) -> Script:
        meta = self.meta(name)
        version = versions.normalize(version)
        if version not in meta.targets:
            raise UsageError(
                f"{name} does not support {versions.label(version)} (it targets "
                f"{', '.join(versions.label(t) for t in meta.targets)})"
            )
        bound = self.bind(name, params)
        try:
            body = self.env.get_template(self._file_for(name, version)).render(
                version=version,
                ps_version=versions.PS_VERSION[version],
                meta=meta,
                template_name=name,
            )
        except jinja2.TemplateError as exc:
            raise TemplateError(f"{name} ({version}): {exc}") from None
        return Script(template=name, version=version, body=body, params=bound, idempotent=meta.idempotent)


@functools.lru_cache(maxsize=1)
def default_renderer() -> Renderer:
    return Renderer()


def render(name: str, version: str, params: Mapping[str, Any] | None = None) -> Script:
    return default_renderer().render(name, version, params)
