"""The package's layering, read from the source: which module may import which."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "hvauto"


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function (relative imports resolved)."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    package = parts if path.name == "__init__.py" else parts[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)
    return found


def test_the_operations_import_no_cycle() -> None:
    """ops/smb and ops/delegation share their target helpers through ops/targets, not each other."""
    modules = {p.stem: p for p in (PACKAGE / "ops").glob("*.py") if p.stem != "__init__"}
    graph = {name: {m.split(".")[2] for m in _imports(path) if m.startswith("hvauto.ops.") and m.split(".")[2] in modules}
             - {name} for name, path in modules.items()}
    assert "smb" not in graph["delegation"]

    def cycle_from(start: str, node: str, seen: tuple[str, ...]) -> tuple[str, ...] | None:
        for nxt in sorted(graph[node]):
            if nxt == start:
                return (*seen, nxt)
            if nxt not in seen:
                found = cycle_from(start, nxt, (*seen, nxt))
                if found:
                    return found
        return None

    for name in sorted(graph):
        assert cycle_from(name, name, (name,)) is None, " -> ".join(cycle_from(name, name, (name,)) or ())


def test_the_shared_target_helpers_live_in_ops_targets() -> None:
    from hvauto.ops import delegation, targets
    from hvauto.ops.smb import share

    assert delegation.check_domain_host is targets.check_domain_host
    assert share.split_list is targets.split_list
    assert targets.split_list(["a,b", " A ", "", "c"]) == ["a", "b", "c"]


def test_only_the_cli_imports_typer() -> None:
    """The engine (ops, runbook, schedule, inventory ...) runs without the command line's library;
    ruff's banned-api rule says the same (pyproject.toml, relaxed for hvauto/cli in its ruff.toml)."""
    offenders = sorted(str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("*.py")
                       if (PACKAGE / "cli") not in p.parents
                       and any(m == "typer" or m.startswith("typer.") for m in _imports(p)))
    assert offenders == []


def test_the_config_dir_is_where_typer_puts_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import typer

    from hvauto.inventory import config_dir

    monkeypatch.delenv("HVAUTO_CONFIG_DIR", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    assert config_dir() == Path(typer.get_app_dir("hvauto"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert config_dir() == Path(typer.get_app_dir("hvauto")) == tmp_path / "xdg" / "hvauto"
    monkeypatch.setenv("HVAUTO_CONFIG_DIR", str(tmp_path / "mine"))
    assert config_dir() == tmp_path / "mine"
