"""Render PowerShell templates: Jinja2 decides the shape, values stay data.

Each ``templates/NAME.ps1.j2`` opens with its **contract**, a metadata comment that is the
one declaration of the step::

    {#- hvauto
    summary: List the VMs on a Hyper-V host.
    targets: [2012, 2012r2, 2016, 2019, 2022, 2025]
    read_only: true          # changes nothing (runs as-is in check mode)
    safe_to_resend: true     # re-sending after a lost answer does no harm
    params:
      Name: {type: "string[]", doc: "exact VM names; every VM when empty"}
      Path: {type: string, required: true, doc: "..."}
    output:                  # the shape of ``result`` (see :mod:`hvauto.contract`)
      vms: [{name: str, id: str, memory_bytes: int, host: str?}]
    -#}

The script's ``param()`` block and its comment-based help are generated from ``params``
(a required parameter is ``Mandatory``), so the two cannot disagree; ``output`` becomes a
JSON Schema that every answer is validated against when it arrives (ops, and the lab that
answers for a host, are held to it). The Jinja context holds only *shape*: the target
``version`` (and ``at_least``), the template's ``meta`` and Hyper-V's enumerations
(``hyperv``). Values never reach Jinja; they are validated against ``params`` here and
bound to ``param()`` by the transport. A version-specific file ``NAME.2012r2.ps1.j2`` wins
over ``NAME.ps1.j2`` for that version.

The first line of a rendered body is a machine line, ``#hvauto template=NAME version=V
sha256=HEX`` (the hash of the rest of the body), by which the wire lab recognises a script.

A body is the same for every set of values, so each template's parsed header and each body
is kept in a cache file (``$HVAUTO_CACHE_DIR``, else ``$XDG_CACHE_HOME/hvauto`` or
``~/.cache/hvauto``), named by a fingerprint of every template file and of the modules that
shape a body (name, size, modification time) and hvauto's version: a command whose templates
are all cached imports neither Jinja2 nor PyYAML. Any change to a template makes a new file.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__, contract, hyperv, text, versions
from .errors import TemplateError, UsageError, ValidationError
from .script import Script

_META_RE = re.compile(r"\A\s*\{#-?\s*hvauto\s*\n(?P<yaml>.*?)-?#\}", re.S)
PARAM_TYPES = ("string", "string[]", "int", "int[]", "bool", "switch", "object", "object[]")
#: PowerShell's type for each parameter type. ``object``: a hashtable (PSRP) or a PSCustomObject
#: (the JSON envelope); scripts read its fields as properties, which works for both.
PS_TYPES = {"string": "[string]", "string[]": "[string[]]", "int": "[int64]", "int[]": "[int64[]]",
            "bool": "[bool]", "switch": "[switch]", "object": "[object]", "object[]": "[object[]]"}
#: The default of a parameter that is neither required nor given one in the header.
TYPE_DEFAULTS: dict[str, Any] = {"string": "", "string[]": [], "int": 0, "int[]": [], "bool": False,
                                 "object": None, "object[]": []}
FIELD_TYPES = ("string", "int", "bool", "string[]")
MACHINE_LINE = re.compile(r"\A#hvauto template=(?P<name>[A-Za-z0-9_]+) version=(?P<version>[0-9a-z]+) "
                          r"sha256=(?P<sha>[0-9a-f]{64})\r?\n")


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
    default: Any = None
    #: ``object`` / ``object[]``: each field's type (string, int, bool, string[]).
    fields: Mapping[str, str] = field(default_factory=dict)

    def ps_declaration(self) -> str:
        """This parameter's line in the generated ``param()`` block."""
        head = "[Parameter(Mandatory = $true)] " if self.required else ""
        decl = f"{head}{PS_TYPES[self.type]} ${self.name}"
        if self.required or self.type == "switch":
            return decl
        return f"{decl} = {ps_literal(self.default)}"


def ps_literal(value: Any) -> str:
    """A header default as PowerShell (template authors' constants, never user values)."""
    if value is None:
        return "$null"
    if isinstance(value, bool):
        return "$true" if value else "$false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, list):
        return "@(" + ", ".join(ps_literal(v) for v in value) + ")"
    raise TypeError(f"no PowerShell literal for {value!r}")


@dataclass(frozen=True)
class TemplateMeta:
    name: str
    summary: str
    targets: tuple[str, ...]
    params: Mapping[str, ParamSpec] = field(default_factory=dict)
    #: The JSON Schema of the template's ``result`` (generated from the header's ``output``).
    output: Mapping[str, Any] = field(default_factory=dict)
    safe_to_resend: bool = True
    read_only: bool = False
    depth: int = 8
    path: Path | None = None

    def param_block(self) -> str:
        return ",\n".join(f"    {p.ps_declaration()}" for p in self.params.values())

    def help_block(self) -> str:
        """Comment-based help (.SYNOPSIS, .PARAMETER) for Get-Help and for a person reading --render."""
        def clean(text: str) -> str:
            return text.replace("#>", "# >")

        lines = [".SYNOPSIS", f"  hvauto {self.name}: {clean(self.summary)}"]
        for p in self.params.values():
            lines += [f".PARAMETER {p.name}", f"  {clean(p.doc) or p.type}" + (" (required)" if p.required else "")]
        return "\n".join(lines)


def _param_spec(template: str, pname: str, spec: Any) -> ParamSpec:
    def fail(why: str) -> TemplateError:
        return TemplateError(f"template {template!r}: parameter {pname}: {why}")

    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", str(pname)):
        raise fail("a parameter name is letters and digits")
    spec = spec or {}
    unknown = set(spec) - {"type", "required", "doc", "default", "fields"}
    if unknown:
        raise fail(f"unknown key(s) {', '.join(sorted(unknown))}")
    ptype = str(spec.get("type", "string"))
    if ptype not in PARAM_TYPES:
        raise fail(f"unknown type {ptype!r}")
    required = bool(spec.get("required", False))
    fields = {str(k): str(v) for k, v in (spec.get("fields") or {}).items()}
    if any(t not in FIELD_TYPES for t in fields.values()):
        raise fail(f"field types are {', '.join(FIELD_TYPES)}")
    if fields and not ptype.startswith("object"):
        raise fail("only object parameters have fields")
    if "default" in spec:
        if required or ptype == "switch":
            raise fail("a required parameter or a switch has no default")
        default = spec["default"]
    else:
        default = TYPE_DEFAULTS.get(ptype)
    return ParamSpec(str(pname), ptype, required, str(spec.get("doc", "")), default, fields)


def _parse_meta(name: str, source: str, path: Path | None, types: Mapping[str, Any] | None = None) -> TemplateMeta:
    import yaml

    match = _META_RE.match(source)
    if not match:
        raise TemplateError(f"template {name!r} has no '{{#- hvauto' metadata header")
    try:
        raw = yaml.safe_load(match.group("yaml")) or {}
    except yaml.YAMLError as exc:
        raise TemplateError(f"template {name!r}: bad metadata header: {exc}") from None
    if not isinstance(raw, dict):
        raise TemplateError(f"template {name!r}: the metadata header is not a mapping")
    if re.search(r"\{%-?\s*block\s+params\b", source):
        raise TemplateError(f"template {name!r}: the param() block is generated from the header's params; "
                            "remove the template's own {% block params %}")
    if "idempotent" in raw:
        raise TemplateError(f"template {name!r}: 'idempotent' is now two keys: safe_to_resend (re-sending after a "
                            "lost answer does no harm) and read_only (changes nothing)")
    unknown = set(raw) - {"summary", "targets", "params", "output", "safe_to_resend", "read_only", "depth"}
    if unknown:
        raise TemplateError(f"template {name!r}: unknown header key(s): {', '.join(sorted(unknown))}")
    targets = tuple(versions.normalize(t) for t in raw.get("targets", versions.OS_VERSIONS))
    params = {str(p): _param_spec(name, p, s) for p, s in (raw.get("params") or {}).items()}
    try:
        output = contract.schema(raw.get("output", "any"), types)
    except contract.ContractSyntaxError as exc:
        raise TemplateError(f"template {name!r}: output: {exc}") from None
    read_only = bool(raw.get("read_only", False))
    return TemplateMeta(
        name=name,
        summary=str(raw.get("summary", "")),
        targets=targets,
        params=params,
        output=output,
        safe_to_resend=bool(raw.get("safe_to_resend", read_only)),
        read_only=read_only,
        depth=int(raw.get("depth", 8)),
        path=path,
    )


class Placeholder(str):
    """A value that only a read would give (``--render``): shown by name, refused by a real run."""

    __slots__ = ()

    def __new__(cls, name: str) -> Placeholder:
        return super().__new__(cls, f"<{name}>")

    @classmethod
    def text(cls, text: str) -> Placeholder:
        """A value made of a placeholder and known parts (``<VM folder of hostB>\\vm01``), shown as is."""
        return super().__new__(cls, text)


def _coerce(template: str, spec: ParamSpec, value: Any) -> Any:
    def fail(why: str) -> TemplateError:
        return TemplateError(f"{template}: parameter {spec.name} ({spec.type}): {why}")

    def one(kind: str, v: Any) -> Any:
        if isinstance(v, Placeholder):
            return v
        if kind == "string":
            if not isinstance(v, str):
                raise fail(f"expected a string, got {type(v).__name__}")
            return v
        if kind == "int":
            if isinstance(v, bool) or not isinstance(v, int):
                raise fail(f"expected an integer, got {type(v).__name__}")
            return v
        if kind in ("bool", "switch"):
            if not isinstance(v, bool):
                raise fail(f"expected true or false, got {type(v).__name__}")
            return v
        if kind == "string[]":
            return many("string", v)
        if kind == "object":
            if not isinstance(v, Mapping):
                raise fail(f"expected an object, got {type(v).__name__}")
            if spec.fields:
                extra = sorted(set(v) - set(spec.fields))
                missing = sorted(set(spec.fields) - set(v))
                if extra or missing:
                    raise fail(f"fields are {', '.join(spec.fields)}")
                return {k: one(spec.fields[k], v[k]) for k in spec.fields}
            return dict(v)
        raise fail("unknown type")  # pragma: no cover - _param_spec rejects it

    def many(kind: str, v: Any) -> list[Any]:
        if isinstance(v, (str, Mapping)) or not isinstance(v, Sequence):
            raise fail(f"expected a list of {kind}s")
        return [one(kind, item) for item in v]

    if spec.type.endswith("[]"):
        return many(spec.type[:-2], value)
    return one(spec.type, value)


def cache_dir() -> Path:
    """Where rendered templates are kept: ``$HVAUTO_CACHE_DIR``, else the platform's cache directory."""
    base = os.environ.get("HVAUTO_CACHE_DIR")
    if base:
        return Path(base)
    if sys.platform.startswith("win"):
        return Path(os.environ.get("LOCALAPPDATA") or os.path.expanduser("~")) / "hvauto" / "cache"
    if sys.platform == "darwin":
        return Path(os.path.expanduser("~/Library/Caches")) / "hvauto"
    return Path(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")) / "hvauto"


def _meta_to_json(meta: TemplateMeta) -> dict[str, Any]:
    return {
        "name": meta.name, "summary": meta.summary, "targets": list(meta.targets),
        "params": [{"name": p.name, "type": p.type, "required": p.required, "doc": p.doc, "default": p.default,
                    "fields": dict(p.fields)} for p in meta.params.values()],
        "output": meta.output, "safe_to_resend": meta.safe_to_resend, "read_only": meta.read_only,
        "depth": meta.depth, "path": str(meta.path) if meta.path is not None else None,
    }


def _meta_from_json(d: Mapping[str, Any]) -> TemplateMeta:
    params = {p["name"]: ParamSpec(p["name"], p["type"], p["required"], p["doc"], p["default"], p["fields"])
              for p in d["params"]}
    return TemplateMeta(name=d["name"], summary=d["summary"], targets=tuple(d["targets"]), params=params,
                        output=d["output"], safe_to_resend=d["safe_to_resend"], read_only=d["read_only"],
                        depth=d["depth"], path=Path(d["path"]) if d["path"] is not None else None)


class _DiskCache:
    """Parsed headers and rendered bodies of one set of template files, in one JSON file.

    Nothing here is a secret (values never reach a body). A file that cannot be read or
    written is ignored: the cache only ever saves work.
    """

    def __init__(self, dirs: Sequence[Path]) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, Any]] = {"meta": {}, "body": {}}
        self._path: Path | None = None
        try:
            self._path = cache_dir() / f"render-{self._fingerprint(dirs)}.json"
            loaded = json.loads(self._path.read_text(encoding="utf-8"))
            if isinstance(loaded, dict) and isinstance(loaded.get("meta"), dict) and isinstance(loaded.get("body"), dict):
                self._data = loaded
        except (OSError, ValueError):
            pass

    @staticmethod
    def _fingerprint(dirs: Sequence[Path]) -> str:
        h = hashlib.sha256(f"{__version__} {sys.version_info[:2]}".encode())
        here = Path(__file__).resolve().parent
        sources = [here / m for m in ("render.py", "contract.py", "hyperv.py", "versions.py", "script.py")]
        for d in dirs:
            h.update(f"\0{d.resolve()}".encode())
            sources += sorted(p for p in d.iterdir() if p.is_file())
        for p in sources:
            st = p.stat()
            h.update(f"\0{p.name}\0{st.st_size}\0{st.st_mtime_ns}".encode())
        return h.hexdigest()[:32]

    def get(self, kind: str, key: str) -> Any:
        with self._lock:
            return self._data[kind].get(key)

    def put(self, kind: str, key: str, value: Any) -> None:
        with self._lock:
            self._data[kind][key] = value
            if self._path is None:
                return
            try:
                self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=".render-", suffix=".tmp")
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(self._data, fh)
                os.replace(tmp, self._path)
            except OSError:
                pass


class Renderer:
    """A Jinja2 environment over the template directories (StrictUndefined: a typo is an error)."""

    def __init__(self, extra_dirs: Sequence[Path] = (), *, cache: bool = True) -> None:
        self.dirs = [*extra_dirs, *template_dirs()]
        self._env: Any = None
        self._cache: _DiskCache | None = None
        if cache:
            try:
                self._cache = _DiskCache(self.dirs)
            except OSError:
                self._cache = None

    @property
    def env(self) -> Any:
        """The Jinja2 environment, made (and Jinja2 imported) when a body is not in the cache."""
        if self._env is None:
            import jinja2

            env = jinja2.Environment(
                loader=jinja2.FileSystemLoader([str(d) for d in self.dirs]),
                undefined=jinja2.StrictUndefined,
                autoescape=False,
                keep_trailing_newline=True,
                trim_blocks=True,
                lstrip_blocks=True,
            )
            env.tests["at_least"] = lambda version, minimum: versions.at_least(version, str(minimum))
            self._env = env
        return self._env

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
        cached = self._cache.get("meta", name) if self._cache is not None else None
        if cached is not None:
            return _meta_from_json(cached)
        for d in self.dirs:
            path = d / f"{name}.ps1.j2"
            if path.is_file():
                meta = _parse_meta(name, path.read_text(encoding="utf-8"), path, self.types())
                if self._cache is not None:
                    self._cache.put("meta", name, _meta_to_json(meta))
                return meta
        raise TemplateError(f"no template named {name!r}")

    @functools.cache  # noqa: B019 - one renderer per process
    def types(self) -> dict[str, Any]:
        """The shared output shapes (``_types.yaml``) that contracts name; a user's own dirs may add some."""
        import yaml

        found: dict[str, Any] = {}
        for d in reversed(self.dirs):
            path = d / "_types.yaml"
            if path.is_file():
                loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
                if not isinstance(loaded, dict):
                    raise TemplateError(f"{path}: shared output types must be a mapping")
                found.update(loaded)
        return found

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
        bound = {k: _coerce(name, meta.params[k], v) for k, v in given.items()}
        bad = [p for k, v in bound.items() for p in text.value_problems(v, k)]
        if bad:
            # Bad input, not a bug: it came from an argument, a file or a variable.
            raise ValidationError(bad, what=f"value for {name} (hvauto sends text as UTF-8)")
        # A Mandatory parameter refuses an empty string or an empty array (PowerShell's binder).
        empty = sorted(k for k, v in bound.items() if meta.params[k].required and v in ("", []))
        if empty:
            raise TemplateError(f"{name}: required parameter(s) given empty: {', '.join(empty)}")
        return bound

    @functools.cache  # noqa: B019 - one renderer per process; templates do not change
    def body(self, name: str, version: str) -> str:
        """The rendered text of ``name`` for ``version``: the same for every set of values."""
        cached = self._cache.get("body", f"{name} {version}") if self._cache is not None else None
        if isinstance(cached, str):
            return cached
        import jinja2

        meta = self.meta(name)
        try:
            rest = self.env.get_template(self._file_for(name, version)).render(
                version=version,
                ps_version=versions.PS_VERSION[version],
                meta=meta,
                template_name=name,
                hyperv=hyperv,
            )
        except jinja2.TemplateError as exc:
            raise TemplateError(f"{name} ({version}): {exc}") from None
        digest = hashlib.sha256(rest.encode("utf-8")).hexdigest()
        body = f"#hvauto template={name} version={version} sha256={digest}\n{rest}"
        if self._cache is not None:
            self._cache.put("body", f"{name} {version}", body)
        return body

    def render(self, name: str, version: str, params: Mapping[str, Any] | None = None) -> Script:
        meta = self.meta(name)
        version = versions.normalize(version)
        if version not in meta.targets:
            raise UsageError(
                f"{name} does not support {versions.label(version)} (it targets "
                f"{', '.join(versions.label(t) for t in meta.targets)})"
            )
        bound = self.bind(name, params)
        return Script(template=name, version=version, body=self.body(name, version), params=bound,
                      safe_to_resend=meta.safe_to_resend, read_only=meta.read_only, output=meta.output)


def has_placeholder(params: Mapping[str, Any]) -> str | None:
    """The first placeholder among ``params`` (a real run refuses it), or None."""
    def walk(v: Any) -> str | None:
        if isinstance(v, Placeholder):
            return str(v)
        if isinstance(v, Mapping):
            v = list(v.values())
        if isinstance(v, list):
            for item in v:
                found = walk(item)
                if found:
                    return found
        return None

    return walk(list(params.values()))


@functools.lru_cache(maxsize=1)
def default_renderer() -> Renderer:
    return Renderer()


def render(name: str, version: str, params: Mapping[str, Any] | None = None) -> Script:
    return default_renderer().render(name, version, params)
