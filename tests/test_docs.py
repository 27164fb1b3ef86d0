"""The user guide (docs/) cannot drift from the CLI silently.

Every `hvauto ...` command line shown in docs/*.md and the README's code blocks must parse against
the real command tree (the subcommand exists, every option exists, every value is one the
option accepts, no required argument is missing); the guide's exit-code table is the README's;
every relative link and anchor in the guide resolves; the sdist's listed folders exist.
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
import typer

from hvauto.cli.main import full_app

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
GUIDE = sorted(DOCS.glob("*.md"))
SOURCES = [*GUIDE, REPO / "README.md"]

_FENCE = re.compile(r"^```([A-Za-z0-9_-]*)\n(.*?)^```", re.M | re.S)
_ENV = re.compile(r"^[A-Z_][A-Z0-9_]*=")
#: Words that end one shell command and start the next.
_SEPARATORS = {"&&", "||", "|", ";", "&"}
#: A redirection (`</dev/null`, `2>&1`, `>`); fully matched, its target is the next word.
_REDIRECT = re.compile(r"\d*[<>]{1,2}&?")


@dataclass(frozen=True)
class Shown:
    """One hvauto command line as a page shows it."""

    where: str
    line: str
    argv: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.where}: {self.line}"


def _command_lines(lang: str, body: str) -> list[str]:
    """The lines of a code block that a user would type: every line of an sh block, the `$ ` lines of a console block."""
    if lang in ("sh", "bash", "shell"):
        return [ln for ln in body.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if lang == "console":
        return [ln[2:] for ln in body.splitlines() if ln.startswith("$ ")]
    return []


def _hvauto_calls(line: str) -> list[tuple[str, ...]]:
    """Each `hvauto ...` in a shell line, its arguments without env assignments, redirections or comments."""
    lexer = shlex.shlex(line, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    calls: list[tuple[str, ...]] = []
    current: list[str] = []
    skip = False
    for word in [*lexer, ";"]:
        if skip:
            skip = False
        elif word in _SEPARATORS:
            while current and _ENV.match(current[0]):
                current.pop(0)
            if current and current[0] == "hvauto":
                calls.append(tuple(current[1:]))
            current = []
        elif _REDIRECT.match(word):
            skip = _REDIRECT.fullmatch(word) is not None  # `> FILE`: the target is the next word
        else:
            current.append(word)
    return calls


def shown_commands() -> list[Shown]:
    found: list[Shown] = []
    for page in SOURCES:
        text = page.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            for line in _command_lines(match.group(1), match.group(2)):
                if "<TAB>" in line:
                    continue  # completion, shown with the key you press
                for argv in _hvauto_calls(line):
                    found.append(Shown(page.relative_to(REPO).as_posix(), line.strip(), argv))
    return found


SHOWN = shown_commands()


def _parse(argv: tuple[str, ...]) -> None:
    """Parse argv as click would before running the command: resolve each group, then the leaf's options."""
    command: click.Command = typer.main.get_command(full_app())
    ctx = command.make_context("hvauto", list(argv))
    while isinstance(command, click.Group):
        # click 8.2 keeps the subcommand's words in _protected_args (protected_args warns); 8.1 has no such name.
        protected = ctx._protected_args if hasattr(ctx, "_protected_args") else ctx.protected_args
        rest = [*protected, *ctx.args]
        if not rest:
            return
        name, sub, rest = command.resolve_command(ctx, rest)
        assert sub is not None and name is not None
        command = sub
        ctx = sub.make_context(name, rest, parent=ctx)


def test_the_guide_shows_many_commands() -> None:
    # A broken extractor would make the parse test pass vacuously.
    pages = {s.where for s in SHOWN}
    assert len(SHOWN) > 100
    assert {"docs/jobs.md", "docs/runbooks.md", "docs/lab.md", "docs/install.md", "README.md"} <= pages


@pytest.mark.parametrize("shown", SHOWN, ids=str)
def test_each_command_shown_parses(shown: Shown, monkeypatch: pytest.MonkeyPatch) -> None:
    if "--install-completion" in shown.argv:
        pytest.skip("parsing it would install completion into this user's shell")
    import typer.completion

    # --show-completion asks shellingham for the shell; a CI runner may have none to find.
    monkeypatch.setattr(typer.completion, "_get_shell_name", lambda: "bash")
    try:
        _parse(shown.argv)
    except (click.exceptions.Exit, SystemExit) as exc:
        # An eager option that ends parsing on purpose (--version; typer's --show-completion exits).
        assert int(getattr(exc, "exit_code", getattr(exc, "code", 0)) or 0) == 0, shown
    except click.ClickException as exc:
        pytest.fail(f"{shown}\n  does not parse: {exc.format_message()}")


def test_the_parser_used_here_rejects_what_the_cli_rejects() -> None:
    for argv in (("migrate", "--sharednothing", "vm01", "hostB"), ("vm", "lst"), ("lab", "fault", "hostA", "--kind", "x"),
                 ("smb", "share", "create", "VMs", "--path", "D:\\S")):
        with pytest.raises(click.ClickException):
            _parse(argv)


def test_the_extractor_finds_calls_in_pipelines_and_env_prefixes() -> None:
    assert _hvauto_calls("HVAUTO_TRANSPORT=winrm hvauto vm list   # WinRS") == [("vm", "list")]
    assert _hvauto_calls("hvauto lab serve &") == [("lab", "serve")]
    assert _hvauto_calls("hvauto delegation grant hostB --to hostA && hvauto doctor") == [
        ("delegation", "grant", "hostB", "--to", "hostA"), ("doctor",)]
    assert _hvauto_calls("X=1 hvauto host show hostA </dev/null 2>&1 | jq .") == [("host", "show", "hostA")]
    assert _hvauto_calls("hvauto smb share create VMs --path 'D:\\Shares\\VMs'") == [
        ("smb", "share", "create", "VMs", "--path", "D:\\Shares\\VMs")]


# -- the exit-code table ---------------------------------------------------------------------------

def _exit_table(text: str) -> str:
    section = re.split(r"^#+ Exit codes\n", text, maxsplit=1, flags=re.M)[1].lstrip("\n")
    lines = section.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[start:end])


def test_the_guide_has_the_readme_exit_code_table() -> None:
    readme = _exit_table((REPO / "README.md").read_text(encoding="utf-8"))
    guide = _exit_table((DOCS / "output.md").read_text(encoding="utf-8"))
    assert readme.count("\n") > 10
    assert guide == readme


# -- links -----------------------------------------------------------------------------------------

def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def test_slugs_follow_github() -> None:
    assert _slug("Reaching the host (exit 6, 7)") == "reaching-the-host-exit-6-7"
    assert _slug("Doctor's host checks") == "doctors-host-checks"
    assert _slug("`--render`") == "--render"


@pytest.mark.parametrize("page", SOURCES, ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def test_the_readme_links_the_guide() -> None:
    assert "](docs/README.md)" in (REPO / "README.md").read_text(encoding="utf-8")
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    for page in GUIDE:
        if page.name != "README.md":
            assert f"]({page.name})" in index, f"docs/README.md does not link {page.name}"


def test_what_the_sdist_lists_exists() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    for name in config["tool"]["hatch"]["build"]["targets"]["sdist"]["include"]:
        assert (REPO / name).exists(), f"the sdist lists {name}, which does not exist"
