"""Static checks for the PowerShell that hvauto sends to Windows Server 2012-2025.

hvauto renders templates for a host's exact Windows Server version and runs them there, where a
wrong parameter or a PowerShell 7 operator is only found at run time, half-way through a job.
This module finds those mistakes before anything is sent, from the text alone:

* the script parses (tree-sitter-powershell) after folding typographic quotes and dashes the way
  PowerShell's own tokenizer does (``‘x’`` is a string and ``–Name`` a parameter to PowerShell);
* every cmdlet of the reference (``hvauto/reference/cmdlets.json`` in the wheel, ``tests/reference/``
  in a source checkout: the documented parameter sets of 52 cmdlets per Windows Server version)
  exists on that version and is called with full parameter names (or documented aliases) that
  exist together in ONE of its parameter sets, with no more positional arguments than that set
  takes, with that set's mandatory parameters given (by name, by position, or from the pipeline
  when the command is piped), and without splatting, which would hide the names; common
  parameters are allowed by the PowerShell that has them (PipelineVariable 4.0,
  InformationAction/InformationVariable 5.0), WhatIf/Confirm only where the cmdlet's
  documentation lists them;
* no syntax newer than the version's Windows PowerShell (3.0 on 2012, 4.0 on 2012 R2, 5.1 later):
  never ``??``, ``?.``, ``?[``, ternary, ``&&``/``||`` or ``clean {}`` (PowerShell 7), and below 5.0
  no ``class``/``enum``, ``using namespace``/``using module`` or ``::new()``; no PowerShell 6+
  parameters of ConvertTo-Json/ConvertFrom-Json, and ConvertTo-Json always with ``-Compress`` and
  an explicit ``-Depth`` (its default depth of 2 silently truncates nested results).

:func:`check_script` is the entry point; it returns :class:`Finding` objects (empty list: clean).
The helpers for template-level checks (:func:`script_parameters`, :func:`check_param_block`,
:func:`check_jinja_source`, :func:`structure`, :func:`envelope_literal`) are reused by the template
tests and by ``hvauto runbook validate`` for users' own templates (:func:`check_user_template`).

What is deliberately not checked: commands outside the reference (Get-VHD, Where-Object, ...)
other than the JSON cmdlets, and parameter value types.

Command line: ``python -m hvauto.pscheck 2012r2 script.ps1`` or ``python -m hvauto.pscheck --template NAME``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hvauto import versions

if TYPE_CHECKING:  # imported when a check runs: importing the checker stays cheap
    import jinja2
    import tree_sitter


def reference_path(here: Path | None = None) -> Path:
    """The cmdlet reference: ``hvauto/reference/cmdlets.json`` in the wheel, ``tests/reference/`` in a checkout.

    ``here`` is the package directory (this module's, unless a test says otherwise)."""
    here = here or Path(__file__).resolve().parent
    candidates = (here / "reference" / "cmdlets.json", here.parent / "tests" / "reference" / "cmdlets.json")
    return next((p for p in candidates if p.is_file()), candidates[0])


REFERENCE_PATH = reference_path()

#: The Jinja context of a template holds only these (see hvauto.render.Renderer.render).
#: ``hyperv``: the enumerations module (hvauto/hyperv.py), constants that shape a script like a version branch.
SHAPE_VARIABLES = frozenset({"version", "ps_version", "meta", "template_name", "hyperv"})

# PowerShell's tokenizer (SpecialChars in CharTraits.cs) reads these as ' " and - respectively.
_FOLD = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2015": "-",
    }
)

# Common parameters (about_CommonParameters) with their aliases, and the PowerShell that brought them.
# WhatIf and Confirm are not here: a cmdlet has them only when its documentation lists them.
_COMMON: dict[str, tuple[str, tuple[str, ...], bool]] = {
    # name: (minimum PowerShell, aliases, switch)
    "Verbose": ("2.0", ("vb",), True),
    "Debug": ("2.0", ("db",), True),
    "ErrorAction": ("2.0", ("ea",), False),
    "WarningAction": ("2.0", ("wa",), False),
    "ErrorVariable": ("2.0", ("ev",), False),
    "WarningVariable": ("2.0", ("wv",), False),
    "OutVariable": ("2.0", ("ov",), False),
    "OutBuffer": ("2.0", ("ob",), False),
    "PipelineVariable": ("4.0", ("pv",), False),
    "InformationAction": ("5.0", ("infa",), False),
    "InformationVariable": ("5.0", ("iv",), False),
}

# The JSON cmdlets every template uses, outside the reference: their parameters in Windows
# PowerShell 3.0-5.1, and those that only PowerShell 6+ has (a common mistake from newer docs).
_JSON_CMDLETS: dict[str, tuple[frozenset[str], dict[str, str]]] = {
    "convertto-json": (
        frozenset({"inputobject", "depth", "compress"}),
        {"enumsasstrings": "6.0", "asarray": "6.2", "escapehandling": "6.2"},
    ),
    "convertfrom-json": (
        frozenset({"inputobject"}),
        {"ashashtable": "6.0", "depth": "6.2", "noenumerate": "7.0", "datekind": "7.5"},
    ),
}


def _ps(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in versions.PS_VERSION[version].split("."))


def _ps_at_least(version: str, minimum: str) -> bool:
    return _ps(version) >= tuple(int(p) for p in minimum.split("."))


@dataclass(frozen=True)
class Finding:
    """One problem: a rule id, a message for humans, and where (1-based line and column)."""

    rule: str
    message: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        return f"{self.line}:{self.column}: [{self.rule}] {self.message}"


# --------------------------------------------------------------------------- parsing


def fold_typography(text: str) -> str:
    """Fold typographic quotes U+2018..U+201E and dashes U+2013..U+2015 to ASCII, as PowerShell reads them."""
    return text.translate(_FOLD)


@functools.cache
def _parser() -> tree_sitter.Parser:
    import tree_sitter
    import tree_sitter_powershell

    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))


def parse(text: str) -> tree_sitter.Tree:
    """Parse PowerShell text (already folded, see :func:`fold_typography`)."""
    return _parser().parse(text.encode("utf-8"))


def walk(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    """Pre-order traversal without recursion (deeply nested expressions stay safe)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def _text(node: tree_sitter.Node) -> str:
    return (node.text or b"").decode("utf-8", "replace")


def _at(node: tree_sitter.Node) -> tuple[int, int]:
    return node.start_point[0] + 1, node.start_point[1] + 1


def _finding(rule: str, message: str, node: tree_sitter.Node) -> Finding:
    line, column = _at(node)
    return Finding(rule, message, line, column)


def parse_errors(tree: tree_sitter.Tree) -> list[Finding]:
    """An ERROR or MISSING node anywhere means PowerShell would not parse the script either."""
    found: list[Finding] = []
    for node in walk(tree.root_node):
        if node.is_error:
            found.append(_finding("parse", f"cannot parse {_text(node)[:60]!r}", node))
        elif node.is_missing:
            found.append(_finding("parse", f"missing {node.type!r}", node))
    return found


# --------------------------------------------------------------------------- the reference


@dataclass(frozen=True)
class ParamInfo:
    name: str
    aliases: tuple[str, ...]
    switch: bool
    positional: bool
    order: int = 0  # rank among the set's positional parameters (positional_order)
    mandatory: bool = False
    from_pipeline: bool = False


@dataclass(frozen=True)
class CmdletSyntax:
    """One cmdlet on one version: its parameter sets (name -> {lower-case name or alias -> ParamInfo})."""

    name: str
    version: str
    sets: Mapping[str, Mapping[str, ParamInfo]]
    # documented in PARAMETERS but in no SYNTAX block: the docs do not say in which set, allow in all
    extra: Mapping[str, ParamInfo] = field(default_factory=dict)

    def lookup(self, written: str) -> ParamInfo | None:
        key = written.lower()
        for params in self.sets.values():
            if key in params:
                return params[key]
        return self.extra.get(key)

    def all_names(self) -> list[str]:
        names = {p.name for params in self.sets.values() for p in params.values()} | {p.name for p in self.extra.values()}
        return sorted(names)


class Reference:
    """The documented parameter sets of the reference cmdlets (``cmdlets.json``), per version."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self._by_lower = {name.lower(): name for name in data["cmdlets"]}

    @classmethod
    @functools.cache
    def load(cls, path: Path = REFERENCE_PATH) -> Reference:
        return cls(json.loads(path.read_text(encoding="utf-8")))

    def canonical(self, command: str) -> str | None:
        """The reference's spelling of a command name (case-insensitive), or None when not in it."""
        return self._by_lower.get(command.lower())

    def available(self, cmdlet: str, version: str) -> bool:
        entry = self.data["cmdlets"][cmdlet]
        return version in entry.get("available_in", ()) and version in entry.get("versions", {})

    def available_in(self, cmdlet: str) -> list[str]:
        return list(self.data["cmdlets"][cmdlet].get("available_in", ()))

    @functools.cache  # noqa: B019 - a Reference lives for the whole test session
    def syntax(self, cmdlet: str, version: str) -> CmdletSyntax:
        doc = self.data["cmdlets"][cmdlet]["versions"][version]
        sets: dict[str, dict[str, ParamInfo]] = {}
        for set_name, params in doc["parameter_sets"].items():
            table: dict[str, ParamInfo] = {}
            order = list(doc.get("positional_order", {}).get(set_name, ()))
            for pname, attrs in params.items():
                info = ParamInfo(
                    name=pname,
                    aliases=tuple(attrs.get("aliases") or ()),
                    switch=bool(attrs.get("switch")),
                    # The SYNTAX line wins where it shows a parameter as named-only.
                    positional=attrs.get("position") is not None
                    and attrs.get("syntax_positional", True) is not False
                    and attrs.get("positional_in_syntax", True) is not False,
                    order=order.index(pname) if pname in order else len(order),
                    # Where SYNTAX and PARAMETERS disagree take the lenient reading, except for switches:
                    # the docs' SYNTAX shows a mandatory switch such as -ManagementOS in brackets.
                    mandatory=bool(attrs.get("mandatory"))
                    and (bool(attrs.get("switch")) or attrs.get("syntax_mandatory", True) is not False),
                    from_pipeline=str(attrs.get("pipeline_input", "")).lower().startswith("true"),
                )
                for key in (pname, *info.aliases):
                    table[key.lower()] = info
            sets[set_name] = table
        extra: dict[str, ParamInfo] = {}
        for item in doc.get("documented_but_not_in_syntax") or ():
            info = ParamInfo(item["name"], (), str(item.get("type", "")).endswith("SwitchParameter"), False)
            extra[info.name.lower()] = info
        return CmdletSyntax(cmdlet, version, sets, extra)


def _common_parameter(written: str) -> tuple[str, str, bool] | None:
    """(name, minimum PowerShell, switch) of a common parameter written by name or alias."""
    key = written.lower()
    for name, (minimum, aliases, switch) in _COMMON.items():
        if key == name.lower() or key in aliases:
            return name, minimum, switch
    return None


# --------------------------------------------------------------------------- commands


@dataclass
class _Argument:
    """A named parameter as written at a call site, and whether a value was bound to it."""

    written: str
    node: tree_sitter.Node
    colon: bool = False
    has_value: bool = False
    switch: bool = False  # a switch takes a value only as -Switch:$value


@dataclass
class CallSite:
    """One command invocation: its name and what was passed, as PowerShell's binder would see it."""

    name: str
    node: tree_sitter.Node
    named: list[_Argument] = field(default_factory=list)
    positional: list[tree_sitter.Node] = field(default_factory=list)
    splats: list[tree_sitter.Node] = field(default_factory=list)
    piped: bool = False  # receives pipeline input (`... | Cmdlet`)


#: Whether a parameter (command name, parameter as written) is a switch.
SwitchOf = Callable[[str, str], bool]

_SPLAT_RE = re.compile(r"^@[A-Za-z_][A-Za-z0-9_:]*$")
_REDIRECT_RE = re.compile(r"^[1-6*]?>>?(&[12])?")


def _command_name(command: tree_sitter.Node) -> str | None:
    for child in command.children:
        if child.type == "command_name":
            return _text(child)
        if child.type == "command_name_expr":
            text = _text(child).strip()
            if text[:1] in "'\"" and text[-1:] == text[:1]:
                text = text[1:-1]
            # `& $scriptBlock`, `& { ... }` and the like are not named commands.
            return text if re.fullmatch(r"[\w.\\-]+", text) else None
    return None


def _argument_is_splat(node: tree_sitter.Node) -> bool:
    return bool(_SPLAT_RE.match(_text(node).strip()))


def call_sites(tree: tree_sitter.Tree, switch_of: SwitchOf | None = None) -> Iterator[CallSite]:
    """Every command invocation in the tree.

    ``switch_of(command, written)`` tells whether a parameter is a switch (a switch takes no value
    unless written ``-Switch:$value``, so ``-AsJob $true`` passes ``$true`` positionally, as in
    PowerShell). Without it every parameter followed by an argument takes it as its value.
    """
    for command in walk(tree.root_node):
        if command.type != "command":
            continue
        name = _command_name(command)
        if not name:
            continue
        name = name.rsplit("\\", 1)[-1]  # Module\Cmdlet
        previous = command.prev_sibling
        site = CallSite(name=name, node=command, piped=previous is not None and previous.type == "|")
        elements = next((c for c in command.children if c.type == "command_elements"), None)
        if elements is None:
            yield site
            continue
        pending: _Argument | None = None
        stop_parsing = False
        for child in elements.children:
            if child.type == "command_argument_sep":
                if pending is not None and any(c.type == ":" for c in child.children):
                    pending.colon = True
                continue
            if child.type == "redirection" or child.type == "comment":
                continue
            if child.type == "generic_token" and _REDIRECT_RE.match(_text(child)):
                continue
            if child.type == "--":
                stop_parsing = True
                continue
            if child.type == "command_parameter" and not stop_parsing:
                written = _text(child)[1:].rstrip(":")
                pending = _Argument(written=written, node=child)
                site.named.append(pending)
                if _text(child).endswith(":"):
                    pending.colon = True
                pending.switch = switch_of is not None and switch_of(name, written)
                continue
            if not child.is_named:
                continue
            if _argument_is_splat(child):
                site.splats.append(child)
                pending = None
                continue
            if pending is not None and not pending.has_value and (pending.colon or not pending.switch):
                pending.has_value = True
                pending = None
                continue
            pending = None
            site.positional.append(child)
        yield site


def _check_reference_call(site: CallSite, reference: Reference, cmdlet: str, version: str) -> list[Finding]:
    found: list[Finding] = []
    syntax = reference.syntax(cmdlet, version)
    if site.splats:
        found.append(
            _finding(
                "splatting",
                f"{cmdlet}: splatting ({_text(site.splats[0])}) hides the parameter names from this check; "
                "write each -Parameter literally",
                site.splats[0],
            )
        )
    named: list[tuple[_Argument, ParamInfo]] = []
    seen: dict[str, _Argument] = {}
    for arg in site.named:
        common = _common_parameter(arg.written)
        info = syntax.lookup(arg.written)
        if info is None and common is not None:
            cname, minimum, _switch = common
            if not _ps_at_least(version, minimum):
                found.append(
                    _finding(
                        "unknown-parameter",
                        f"{cmdlet}: -{arg.written} is a common parameter from PowerShell {minimum}; "
                        f"{versions.label(version)} has {versions.PS_VERSION[version]}",
                        arg.node,
                    )
                )
            canonical = cname
        elif info is None:
            hint = ""
            prefixed = [n for n in syntax.all_names() if n.lower().startswith(arg.written.lower())]
            prefixed += [c for c in _COMMON if c.lower().startswith(arg.written.lower())]
            elsewhere = [
                v
                for v in versions.OS_VERSIONS
                if v != version and reference.available(cmdlet, v) and reference.syntax(cmdlet, v).lookup(arg.written)
            ]
            if arg.written and prefixed:
                hint = f" (abbreviation of {', '.join('-' + p for p in prefixed)}? write the full name)"
            elif elsewhere:
                hint = f" (documented on {', '.join(versions.label(v) for v in elsewhere)})"
            found.append(
                _finding(
                    "unknown-parameter",
                    f"{cmdlet} has no parameter -{arg.written} on {versions.label(version)}{hint}",
                    arg.node,
                )
            )
            continue
        else:
            canonical = info.name
            named.append((arg, info))
        if canonical.lower() in seen:
            found.append(_finding("duplicate-parameter", f"{cmdlet}: -{canonical} is given twice", arg.node))
        seen[canonical.lower()] = arg
        is_switch = info.switch if info is not None else bool(common and common[2])
        if not is_switch and not arg.has_value:
            found.append(_finding("missing-argument", f"{cmdlet}: -{arg.written} needs a value", arg.node))
    if found:
        return found

    fitting: list[str] = []
    by_names: list[str] = []
    unmet: dict[str, list[str]] = {}
    for set_name, params in syntax.sets.items():
        if not all(a.written.lower() in params or a.written.lower() in syntax.extra for a, _ in named):
            continue
        by_names.append(set_name)
        members = {p.name: p for p in params.values()}
        bound = {params[a.written.lower()].name if a.written.lower() in params else a.written for a, _ in named}
        slots = sorted(
            (p for p in members.values() if p.positional and not p.switch and p.name not in bound), key=lambda p: p.order
        )
        if len(site.positional) > len(slots):
            continue
        fitting.append(set_name)
        bound |= {p.name for p in slots[: len(site.positional)]}
        # A mandatory parameter may also come from the pipeline; PowerShell would prompt for the rest.
        missing = [
            p.name
            for p in members.values()
            if p.mandatory and p.name not in bound and not (site.piped and p.from_pipeline)
        ]
        if not missing:
            return []
        unmet[set_name] = sorted(missing)
    given = ", ".join("-" + info.name for _, info in named) or "no named parameters"
    if fitting:
        options = "; ".join(f"{s}: -{', -'.join(m)}" for s, m in unmet.items())
        return [
            _finding(
                "missing-mandatory",
                f"{cmdlet} on {versions.label(version)} with {given}"
                f"{f' and {len(site.positional)} positional argument(s)' if site.positional else ''}"
                f" lacks mandatory parameters in every matching set ({options})",
                site.node,
            )
        ]
    if not by_names:
        homes = []
        for _, info in named:
            sets = [s for s, params in syntax.sets.items() if info.name.lower() in params]
            homes.append(f"-{info.name} in {'/'.join(sets) if sets else 'every set'}")
        return [
            _finding(
                "parameter-set",
                f"{cmdlet} on {versions.label(version)}: no parameter set has all of {given} ({'; '.join(homes)})",
                site.node,
            )
        ]
    return [
        _finding(
            "positional",
            f"{cmdlet} on {versions.label(version)}: {len(site.positional)} positional argument(s) "
            f"({', '.join(repr(_text(p)[:30]) for p in site.positional)}) with {given} fit no parameter set "
            f"({', '.join(by_names)}); name the parameters",
            site.positional[0] if site.positional else site.node,
        )
    ]


def _check_builtin_call(site: CallSite, version: str) -> list[Finding]:
    found: list[Finding] = []
    key = site.name.lower()
    if key not in _JSON_CMDLETS:
        return found
    known, newer = _JSON_CMDLETS[key]
    for arg in site.named:
        written = arg.written.lower()
        since = newer.get(written)
        if since:
            found.append(
                _finding(
                    "newer-syntax",
                    f"{site.name} -{arg.written} needs PowerShell {since}; {versions.label(version)} has "
                    f"Windows PowerShell {versions.PS_VERSION[version]}",
                    arg.node,
                )
            )
        elif written not in known and _common_parameter(written) is None:
            found.append(
                _finding(
                    "unknown-parameter",
                    f"{site.name} has no parameter -{arg.written} in Windows PowerShell "
                    f"(it has {', '.join('-' + k for k in sorted(known))}; full names only)",
                    arg.node,
                )
            )
    if key == "convertto-json":
        given = {a.written.lower() for a in site.named}
        if "compress" not in given:
            found.append(_finding("convertto-json", "ConvertTo-Json needs -Compress (one JSON document per line)", site.node))
        if "depth" not in given:
            found.append(
                _finding("convertto-json", "ConvertTo-Json needs an explicit -Depth (the default 2 truncates)", site.node)
            )
    return found


def _switch_lookup(reference: Reference, version: str) -> SwitchOf:
    def switch_of(command: str, written: str) -> bool:
        common = _common_parameter(written)
        cmdlet = reference.canonical(command)
        if cmdlet is not None and reference.available(cmdlet, version):
            info = reference.syntax(cmdlet, version).lookup(written)
            if info is not None:
                return info.switch
        if common is not None:
            return common[2]
        if command.lower() == "convertto-json":
            return written.lower() in ("compress", "enumsasstrings", "asarray")
        if command.lower() == "convertfrom-json":
            return written.lower() in ("ashashtable", "noenumerate")
        return False

    return switch_of


def check_commands(tree: tree_sitter.Tree, version: str, reference: Reference | None = None) -> list[Finding]:
    """Reference cmdlets: available on the version, full names, one parameter set, no splatting."""
    reference = reference or Reference.load()
    found: list[Finding] = []
    for site in call_sites(tree, _switch_lookup(reference, version)):
        cmdlet = reference.canonical(site.name)
        if cmdlet is not None:
            if not reference.available(cmdlet, version):
                found.append(
                    _finding(
                        "unavailable-cmdlet",
                        f"{cmdlet} does not exist on {versions.label(version)} "
                        f"(available in {', '.join(reference.available_in(cmdlet))})",
                        site.node,
                    )
                )
                continue
            found.extend(_check_reference_call(site, reference, cmdlet, version))
        else:
            found.extend(_check_builtin_call(site, version))
    return found


# --------------------------------------------------------------------------- language version


def code_mask(text: str, tree: tree_sitter.Tree) -> str:
    """The text with string literals and comments blanked (newlines kept), code inside ``"$(...)"`` kept."""
    raw = text.encode("utf-8")
    data = bytearray(raw)

    def blank(node: tree_sitter.Node) -> None:
        for i in range(node.start_byte, node.end_byte):
            if data[i] not in (0x0A, 0x0D):
                data[i] = 0x20

    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type == "comment":
            blank(node)
            continue
        if node.type == "string_literal":
            blank(node)
            # Sub-expressions in an expandable string are code again: restore and re-scan them.
            for inner in walk(node):
                if inner.type == "sub_expression" and _same(_nearest_string(inner), node):
                    data[inner.start_byte : inner.end_byte] = raw[inner.start_byte : inner.end_byte]
                    stack.append(inner)
            continue
        stack.extend(node.children)
    return data.decode("utf-8", "replace")


def _nearest_string(node: tree_sitter.Node) -> tree_sitter.Node | None:
    parent = node.parent
    while parent is not None and parent.type != "string_literal":
        parent = parent.parent
    return parent


def _same(a: tree_sitter.Node | None, b: tree_sitter.Node) -> bool:
    return a is not None and (a.start_byte, a.end_byte, a.type) == (b.start_byte, b.end_byte, b.type)


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


# (pattern over code with strings and comments blanked, what it is, minimum PowerShell)
_TOKEN_RULES: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"(?<![$?])\?\?=?"), "the null-coalescing operator ??", "7.0"),
    (re.compile(r"(?<![$\s?])\?\."), "the null-conditional member access ?.", "7.0"),
    (re.compile(r"(?<![$\s?])\?\["), "the null-conditional index ?[", "7.0"),
    # `?` between spaces and not in command position (`| ? {` is Where-Object's alias).
    (re.compile(r"(?<=[^\s|{(;=,])[ \t]+\?[ \t]+(?=[^\s])"), "the ternary operator ? :", "7.0"),
    (re.compile(r"(?<![\w$-])(?:&&|\|\|)"), "pipeline chain operators && / ||", "7.0"),
    (re.compile(r"(?im)(?:^|[\s;}])clean\s*\{"), "a clean {} block", "7.3"),
    (re.compile(r"(?im)^[ \t]*using[ \t]+(?:namespace|module|assembly)\b"), "a using statement", "5.0"),
)


def check_language(text: str, tree: tree_sitter.Tree, version: str) -> list[Finding]:
    """Syntax the version's Windows PowerShell does not have (tree nodes where the grammar has them)."""
    found: list[Finding] = []
    ps = versions.PS_VERSION[version]

    def newer(what: str, minimum: str, line: int, column: int) -> None:
        if not _ps_at_least(version, minimum):
            found.append(
                Finding("newer-syntax", f"{what} needs PowerShell {minimum}; {versions.label(version)} has {ps}", line, column)
            )

    for node in walk(tree.root_node):
        if node.type == "pipeline_chain_tail":
            newer("pipeline chain operators && / ||", "7.0", *_at(node))
        elif node.type == "class_statement":
            newer("a class definition", "5.0", *_at(node))
        elif node.type == "enum_statement":
            newer("an enum definition", "5.0", *_at(node))
        elif node.type == "invokation_expression":
            kids = node.children
            for i, kid in enumerate(kids):
                if (
                    kid.type == "::"
                    and i + 2 < len(kids)
                    and _text(kids[i + 1]).lower() == "new"
                    and kids[i + 2].type == "argument_list"
                ):
                    newer("::new()", "5.0", *_at(node))
    code = code_mask(text, tree)
    for pattern, what, minimum in _TOKEN_RULES:
        for match in pattern.finditer(code):
            start = match.start() + (len(match.group(0)) - len(match.group(0).lstrip()))
            newer(what, minimum, *_line_col(code, start))
    # The grammar has no node for these where they appear outside an invocation.
    for match in re.finditer(r"(?i)::new\b", code):
        newer("::new()", "5.0", *_line_col(code, match.start()))
    # The tree and the token scan may both see one construct: report it once per line.
    unique: dict[tuple[int, str], Finding] = {}
    for f in found:
        unique.setdefault((f.line, f.message), f)
    return list(unique.values())


# --------------------------------------------------------------------------- entry point


def check_script(text: str, version: str, reference: Reference | None = None) -> list[Finding]:
    """Every finding for one PowerShell script meant for one Windows Server version ('2012' ... '2025')."""
    version = versions.normalize(version)
    folded = fold_typography(text)
    tree = parse(folded)
    found = parse_errors(tree)
    found += check_language(folded, tree, version)
    found += check_commands(tree, version, reference)
    return sorted(found, key=lambda f: (f.line, f.column, f.rule))


# --------------------------------------------------------------------------- template-level helpers


@dataclass(frozen=True)
class ScriptParameter:
    name: str
    type: str  # the type literal as written, lower-case, without brackets ('' when untyped)


def _param_block(tree: tree_sitter.Tree) -> tree_sitter.Node | None:
    """The script's own param() block: the first one not inside a function."""
    for node in walk(tree.root_node):
        if node.type == "function_statement":
            continue
        if node.type == "param_block":
            parent = node.parent
            while parent is not None and parent.type != "function_statement":
                parent = parent.parent
            if parent is None:
                return node
    return None


def script_parameters(text: str) -> list[ScriptParameter] | None:
    """The variables of the script's param() block with their type literals; None without a block."""
    tree = parse(fold_typography(text))
    block = _param_block(tree)
    if block is None:
        return None
    result: list[ScriptParameter] = []
    for node in walk(block):
        if node.type != "script_parameter":
            continue
        variable = next(c for c in node.children if c.type == "variable")
        ptype = ""
        attributes = next((c for c in node.children if c.type == "attribute_list"), None)
        for attribute in attributes.children if attributes is not None else ():
            literal = next((c for c in attribute.children if c.type == "type_literal"), None)
            if literal is not None:
                ptype = re.sub(r"\s+", "", _text(literal)[1:-1]).lower()
        result.append(ScriptParameter(_text(variable)[1:], ptype))
    return result


#: Header type -> the param() type literals that bind it faithfully (lower-case).
HEADER_TYPES: dict[str, frozenset[str]] = {
    "string": frozenset({"string"}),
    "string[]": frozenset({"string[]"}),
    "int": frozenset({"int64", "int", "long", "int32"}),
    "int[]": frozenset({"int64[]", "long[]", "int[]", "int32[]"}),
    "bool": frozenset({"bool", "boolean"}),
    "switch": frozenset({"switch"}),
    "object": frozenset({"object"}),
    "object[]": frozenset({"object[]"}),
}


def check_param_block(header: Mapping[str, str], text: str) -> list[Finding]:
    """The metadata header's params (name -> type) must be exactly the param() block's variables."""
    params = script_parameters(text)
    if params is None:
        return [Finding("param-block", "the script has no param() block")] if header else []
    found: list[Finding] = []
    declared = {p.name: p for p in params}
    for name, htype in header.items():
        p = declared.get(name)
        if p is None:
            found.append(Finding("param-block", f"header parameter {name} is not in the param() block"))
        elif p.type not in HEADER_TYPES.get(htype, frozenset()):
            want = " or ".join(f"[{t}]" for t in sorted(HEADER_TYPES.get(htype, ())))
            found.append(Finding("param-block", f"${name} is [{p.type}] in param() but {htype} in the header: use {want}"))
    for name in declared:
        if name not in header:
            found.append(Finding("param-block", f"param() variable ${name} is not declared in the header"))
    return found


def check_jinja_source(source: str, env: jinja2.Environment | None = None) -> list[Finding]:
    """A template's Jinja may read only shape variables: every expression is scanned statically."""
    import jinja2
    import jinja2.meta
    import jinja2.nodes

    env = env or jinja2.Environment()
    try:
        ast = env.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        return [Finding("jinja", f"does not parse: {exc.message}", exc.lineno or 0)]
    found = []
    for name in sorted(jinja2.meta.find_undeclared_variables(ast) - SHAPE_VARIABLES):
        found.append(Finding("jinja", f"reads {name!r}: only {', '.join(sorted(SHAPE_VARIABLES))} reach a template"))
    # Each {{ ... }} on its own too: it may read shape variables and names the template binds itself
    # ({% for %}, {% set %}, macro arguments), whose sources the whole-template scan above checked.
    local = {n.name for n in ast.find_all(jinja2.nodes.Name) if n.ctx in ("store", "param")}
    for match in re.finditer(r"\{\{-?(.*?)-?\}\}", source, re.S):
        expr = match.group(1)
        try:
            names = jinja2.meta.find_undeclared_variables(env.parse("{{" + expr + "}}"))
        except jinja2.TemplateSyntaxError:
            names = set(re.findall(r"[A-Za-z_]\w*", expr))
        for name in sorted(names - SHAPE_VARIABLES - local):
            line = source.count("\n", 0, match.start()) + 1
            found.append(Finding("jinja", f"{{{{{expr.strip()}}}}} interpolates {name!r}, not a shape variable", line))
    return found


def envelope_literal(tree: tree_sitter.Tree) -> tree_sitter.Node | None:
    """The string literal assigned to ``$hvautoEnvelope`` in a script's text form."""
    for node in walk(tree.root_node):
        if node.type != "assignment_expression":
            continue
        left = next((c for c in node.children if c.type == "left_assignment_expression"), None)
        if left is None or _text(left).strip().lower() != "$hvautoenvelope":
            continue
        for inner in walk(node):
            if inner.type == "string_literal":
                return inner
    return None


def structure(text: str) -> tuple[list[str], str]:
    """The node types of the parse (pre-order) and the code text, with the envelope literal abstracted."""
    folded = fold_typography(text)
    tree = parse(folded)
    envelope = envelope_literal(tree)
    types: list[str] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if envelope is not None and node.start_byte == envelope.start_byte and node.type == "string_literal":
            types.append("<envelope>")
            continue
        types.append(node.type if node.is_named else repr(node.type))
        stack.extend(reversed(node.children))
    code = folded
    if envelope is not None:
        raw = folded.encode("utf-8")
        code = (raw[: envelope.start_byte] + b"'<envelope>'" + raw[envelope.end_byte :]).decode("utf-8")
    return types, code


def node_text(node: tree_sitter.Node) -> str:
    return _text(node)


def sets_error_action_stop(text: str) -> bool:
    """Whether the script itself (not a function in it) assigns ``$ErrorActionPreference = 'Stop'``."""
    tree = parse(fold_typography(text))
    for node in walk(tree.root_node):
        if node.type != "assignment_expression":
            continue
        left = next((c for c in node.children if c.type == "left_assignment_expression"), None)
        if left is None or _text(left).strip().lower() != "$erroractionpreference":
            continue
        parent = node.parent
        while parent is not None and parent.type != "function_statement":
            parent = parent.parent
        right = _text(node.children[-1]).strip()
        if parent is None and right.lower() in ("'stop'", '"stop"'):
            return True
    return False


#: Plausible values of each header type, for rendering a template in a check.
SAMPLE_VALUES: dict[str, Any] = {
    "string": "vm01",
    "string[]": ["vm01", "web01"],
    "int": 2,
    "int[]": [1, 2],
    "bool": True,
    "switch": True,
}


def _sample(spec: Any) -> Any:
    if spec.type.startswith("object"):
        one = {k: SAMPLE_VALUES[t] for k, t in spec.fields.items()}
        return [one] if spec.type.endswith("[]") else one
    return SAMPLE_VALUES[spec.type]


def sample_params(meta: Any, *, required_only: bool = False) -> dict[str, Any]:
    """Sample values for a template's declared params (``hvauto.render.TemplateMeta``)."""
    return {
        name: _sample(spec) for name, spec in meta.params.items() if spec.required or not required_only
    }


def check_template(renderer: Any, name: str, version: str) -> list[Finding]:
    """Every template-level check for one template (``hvauto.render.Renderer``) on one version it targets.

    The header declares its targets; its Jinja reads only shape variables; it renders with the
    values of each declared type (required ones only, too) to the same body; that body and its
    self-contained text form pass :func:`check_script`; its param() block matches the header; it
    sets ``$ErrorActionPreference = 'Stop'``.
    """
    import yaml

    from hvauto.errors import HvautoError
    from hvauto.render import _META_RE

    found: list[Finding] = []
    meta = renderer.meta(name)
    sources = [d / f"{name}.ps1.j2" for d in renderer.dirs] + [d / f"{name}.{version}.ps1.j2" for d in renderer.dirs]
    for path in sources:
        if not path.is_file():
            continue
        source = path.read_text(encoding="utf-8")
        match = _META_RE.match(source)
        raw = yaml.safe_load(match.group("yaml")) if match else None
        if path.name == f"{name}.ps1.j2" and (not isinstance(raw, dict) or not raw.get("targets")):
            found.append(Finding("header", f"{path.name}: the metadata header must declare its targets"))
        found += [Finding(f.rule, f"{path.name}: {f.message}", f.line, f.column) for f in check_jinja_source(source)]
    try:
        script = renderer.render(name, version, sample_params(meta))
        minimal = renderer.render(name, version, sample_params(meta, required_only=True))
    except HvautoError as exc:
        return [*found, Finding("render", f"{name} ({version}) does not render: {exc}")]
    if minimal.body != script.body:
        found.append(Finding("value-in-code", "the rendered body changes with the parameter values"))
    for label, text in (("body", script.body), ("text form", script.as_text())):
        found += [Finding(f.rule, f"{label}: {f.message}", f.line, f.column) for f in check_script(text, version)]
    found += check_param_block({p: s.type for p, s in meta.params.items()}, script.body)
    if not sets_error_action_stop(script.body):
        found.append(Finding("error-action", "the script does not set $ErrorActionPreference = 'Stop'"))
    return found


@dataclass(frozen=True)
class SourceFinding:
    """A finding in a template's own source file: the file, its 1-based line, and what is wrong."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def _source_line(source: list[str], rendered: str, line: int, fallback: int) -> int:
    """The source line a rendered line came from: the first source line with the same text."""
    lines = rendered.splitlines()
    text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
    if text:
        for i, candidate in enumerate(source, 1):
            if candidate.strip() == text:
                return i
        for i, candidate in enumerate(source, 1):
            if candidate.strip() and (text in candidate or candidate.strip() in text):
                return i
    return fallback


def _param_line(source: list[str], message: str, fallback: int) -> int:
    """The line of the parameter a param-block finding names: its ``$Name`` or its header entry."""
    match = re.search(r"\$(\w+)", message)
    if match:
        pattern = re.compile(rf"\${re.escape(match.group(1))}\b", re.I)
    else:
        named = re.search(r"header parameter (\w+)", message)
        if named is None:
            return fallback
        pattern = re.compile(rf"^\s*{re.escape(named.group(1))}\s*:")
    return next((i for i, text in enumerate(source, 1) if pattern.search(text)), fallback)


def check_user_template(renderer: Any, name: str) -> list[SourceFinding]:
    """The checks hvauto's own templates pass, for a user's template, by line of its source file.

    On each version the header targets, the template renders with sample values of its declared
    types, and its body must parse, call the reference cmdlets with the parameters of one
    documented parameter set, use no syntax newer than that version's PowerShell, and have a
    param() block that matches the header; its Jinja may read only the shape variables. A
    finding in the rendered body is mapped back to the source line with the same text (else
    the ``{% block body %}`` line). hvauto's ``_base.ps1.j2`` around the body is checked by
    hvauto's own tests.
    """
    from hvauto.errors import HvautoError

    meta = renderer.meta(name)
    main_path: Path = meta.path
    #: (file, line, message) -> the versions it was found on (None: not version-specific)
    found: dict[tuple[Path, int, str], list[str]] = {}

    def add(path: Path, line: int, message: str, version: str | None = None) -> None:
        on = found.setdefault((path, line, message), [])
        if version is not None and version not in on:
            on.append(version)

    sources: dict[Path, list[str]] = {}
    for path in [main_path, *(main_path.parent / f"{name}.{v}.ps1.j2" for v in versions.OS_VERSIONS)]:
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            sources[path] = text.splitlines()
            for f in check_jinja_source(text):
                add(path, f.line or 1, f.message)
    if not meta.targets:
        add(main_path, 1, "the metadata header declares no targets (Windows Server versions, e.g. [2019, 2022])")
    header = {p: spec.type for p, spec in meta.params.items()}
    for version in meta.targets:
        override = main_path.parent / f"{name}.{version}.ps1.j2"
        path = override if override in sources else main_path
        source = sources.get(path, [])
        body_at = next((i for i, t in enumerate(source, 1) if re.search(r"\{%-?\s*block\s+body\b", t)), 1)
        params_at = next((i for i, t in enumerate(source, 1) if re.search(r"\{%-?\s*block\s+params\b", t)), 1)
        try:
            script = renderer.render(name, version, sample_params(meta))
        except HvautoError as exc:
            add(path, 1, f"does not render: {exc}", version)
            continue
        # The version's name becomes a placeholder, so one problem on several versions is one finding.
        own = re.compile(re.escape(versions.label(version)) + r"(?! R2)")
        for f in check_script(script.body, version):
            add(path, _source_line(source, script.body, f.line, body_at), own.sub("{on}", f.message), version)
        for f in check_param_block(header, script.body):
            add(path, _param_line(source, f.message, params_at), f.message)
    out = []
    for (path, line, message), on in found.items():
        names = ", ".join([versions.label(v) for v in on[:1]] + [versions.label(v).removeprefix("Windows Server ")
                                                                  for v in on[1:]])
        if "{on}" in message:
            message = message.replace("{on}", names)
        elif on and set(on) != set(meta.targets):
            message += f" (on {names})"
        out.append(SourceFinding(path, line, message))
    return sorted(out, key=lambda f: (str(f.path), f.line))


def main(argv: list[str] | None = None) -> int:
    """``python -m hvauto.pscheck VERSION FILE...`` checks PowerShell files ('-' reads stdin);
    ``python -m hvauto.pscheck --template NAME...`` runs every template check on each version it targets.

    Exit 0 when clean, 1 with findings (one per line), 2 on bad input (one line, no traceback)."""
    import argparse
    import sys

    from hvauto.errors import HvautoError, UsageError

    parser = argparse.ArgumentParser(prog="python -m hvauto.pscheck", description=main.__doc__)
    parser.add_argument("--template", action="store_true", help="the arguments are template names")
    parser.add_argument("args", nargs="+", metavar="ARG")
    ns = parser.parse_args(argv)
    problems = 0
    try:
        if ns.template:
            from hvauto.render import Renderer

            renderer = Renderer()
            for name in ns.args:
                for version in renderer.meta(name).targets:
                    for finding in check_template(renderer, name, version):
                        print(f"{name} ({version}) {finding}")
                        problems += 1
        else:
            version, *paths = ns.args
            version = versions.normalize(version)
            if not paths:
                parser.error("give one or more files to check after the version ('-' reads stdin)")
            for path in paths:
                try:
                    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8-sig")
                except (OSError, UnicodeDecodeError) as exc:
                    raise UsageError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
                for finding in check_script(text, version):
                    print(f"{path}:{finding}")
                    problems += 1
    except HvautoError as exc:
        print(f"pscheck: error: {exc}", file=sys.stderr)
        return 2
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
