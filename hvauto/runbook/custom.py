"""The ``powershell`` step: a user's own ``.ps1.j2`` template, under the rules of hvauto's own.

The file needs the same ``{#- hvauto ... -#}`` header (targets, params with types, safe_to_resend, output),
extends hvauto's ``_base.ps1.j2`` (strict ``param()`` block, errors as data, one JSON result),
and receives its values as parameters, never as code. Its result's ``changed`` key (when it
returns an object with one) becomes the step's ``changed``.

In ``--check`` mode the template runs only if it declares a ``WhatIf`` switch (it is then passed
``-WhatIf``); otherwise the step is skipped, since an arbitrary script has no what-if mode.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hvauto.errors import UsageError
from hvauto.render import Renderer, TemplateMeta, default_renderer
from hvauto.session import Session

SUFFIX = ".ps1.j2"
_EXTENDS = re.compile(r"\{%-?\s*extends\s+[\"']_base\.ps1\.j2[\"']\s*-?%\}")


@functools.lru_cache(maxsize=32)
def _renderer(directory: str) -> Renderer:
    return Renderer(extra_dirs=[Path(directory)])


def template_name(path: Path) -> str:
    return path.name[: -len(SUFFIX)] if path.name.endswith(SUFFIX) else path.name


def check(path: Path) -> tuple[TemplateMeta | None, list[str]]:
    """The template's metadata and every reason it cannot be used (no remote call)."""
    if not path.name.endswith(SUFFIX):
        return None, [f"{path}: a powershell template must be a {SUFFIX} file"]
    if not path.is_file():
        return None, [f"{path}: no such template file"]
    name = template_name(path)
    problems: list[str] = []
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):
        problems.append(f"{path.name}: template names are letters, digits and _ only")
    elif name in default_renderer().names():
        problems.append(f"{path.name}: {name!r} is one of hvauto's own templates; give yours another name")
    if (path.parent / "_base.ps1.j2").exists():
        problems.append(f"{path.parent}/_base.ps1.j2 would replace hvauto's base template; remove it")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [f"{path.name}: cannot read as UTF-8 text: {type(exc).__name__}"]
    if not _EXTENDS.search(text):
        problems.append(f"{path.name}: must {{% extends \"_base.ps1.j2\" %}} (strict params, errors as data, one JSON)")
    if problems:
        return None, problems
    try:
        return _renderer(str(path.parent.resolve())).meta(name), []
    except Exception as exc:  # noqa: BLE001 - any header problem is reported as a validation problem
        return None, [f"{path.name}: {exc}"]


def check_code(meta: TemplateMeta) -> list[str]:
    """The template's PowerShell under the checks hvauto's own pass (:func:`hvauto.pscheck.check_user_template`),
    on every version its header targets: parse errors, cmdlets called with parameters of no documented
    parameter set, syntax newer than the version's PowerShell, header and ``param()`` that differ.
    Each is ``FILE:LINE: reason`` in the template's own file."""
    from hvauto import pscheck

    assert meta.path is not None
    return [str(f) for f in pscheck.check_user_template(_renderer(str(meta.path.parent.resolve())), meta.name)]


def check_params(meta: TemplateMeta, params: Mapping[str, Any], *, templated: set[str]) -> list[str]:
    """Names against the header; literal values against their declared types."""
    problems = [f"parameter {k!r} is not declared in {meta.name}'s header (declared: "
                f"{', '.join(meta.params) or 'none'})" for k in params if k not in meta.params]
    problems += [f"{meta.name} needs parameter {k!r}" for k, s in meta.params.items()
                 if s.required and k not in params]
    literal = {k: v for k, v in params.items() if k in meta.params and k not in templated}
    try:
        _renderer(str(meta.path.parent.resolve()) if meta.path else ".").bind(meta.name, literal | {
            k: None for k in meta.params if k not in literal})
    except Exception as exc:  # noqa: BLE001 - reported as a problem, with the renderer's own words
        text = str(exc)
        if "missing required" not in text:
            problems.append(text)
    return problems


def run_template(session: Session, *, host: str, template: str, params: Mapping[str, Any] | None = None,
                 what_if: bool = False) -> dict[str, Any]:
    path = Path(template)
    meta, problems = check(path)
    if meta is None:
        raise UsageError("; ".join(problems))
    values = dict(params or {})
    if what_if:
        if "WhatIf" not in meta.params:
            return {"changed": False, "skipped": f"{meta.name} declares no WhatIf switch: not run in check mode"}
        values["WhatIf"] = True
    renderer = _renderer(str(path.parent.resolve()))
    cfg = session.host(host)
    script = renderer.render(meta.name, session.os_version(cfg.name), values)
    data = session.run_script(cfg.name, script).data
    changed = bool(data.get("changed")) if isinstance(data, dict) else False
    return {"changed": changed, "result": data}
