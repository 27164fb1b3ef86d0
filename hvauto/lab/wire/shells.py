"""The shells the lab endpoint hosts: a PSRP runspace pool, and a WinRS cmd shell.

Both are driven by the WS-Management layer (:mod:`hvauto.lab.wire.server`) and run
templates through :func:`hvauto.lab.transport.execute`, the in-process lab's own path,
on a worker thread per command. A Receive waits on the shell's condition until there is
something to send or the command is done, so clients long-poll as they do on Windows.

The PSRP half is psrpcore's sans-IO server (``ServerRunspacePool``/``ServerPipeline``):
the bytes of Create, Command and Send go to ``receive_data``, events come out of
``next_event``, and what ``data_to_send`` yields is queued per target (the pool, or one
pipeline) until a Receive for that target carries it away.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from psrpcore import ServerPipeline, ServerRunspacePool
from psrpcore._payload import PSRPPayload, StreamType
from psrpcore.types import (
    ErrorCategory,
    ErrorCategoryInfo,
    ErrorRecord,
    NETException,
    PSInvocationState,
)

from hvauto.lab.transport import LabRun
from hvauto.remote.base import Progress

from . import scripts

#: Raw PSRP bytes per data_to_send() chunk; a Receive answer joins whole chunks up to RECEIVE_LIMIT.
CHUNK = 32_768
RECEIVE_LIMIT = 96_000

#: Runs a template on this shell's host: (TemplateRun, progress listener) -> LabRun.
Runner = Callable[[scripts.TemplateRun, Callable[[Progress], None]], LabRun]


@dataclass
class Stop:
    """Set when the endpoint shuts down: every wait ends at once."""

    event: threading.Event = field(default_factory=threading.Event)


def _category(name: str) -> ErrorCategory:
    try:
        return ErrorCategory[name]
    except KeyError:
        return ErrorCategory.NotSpecified


def _exception(message: str, type_name: str) -> NETException:
    exc = NETException(Message=message, HResult=-2146233087)
    names = [type_name] if type_name else []
    if type_name != "System.Exception":
        names.append("System.Exception")
    exc.PSObject.type_names = [*names, "System.Object"]
    return exc


def error_record(rec: dict[str, Any]) -> ErrorRecord:
    """A lab error record (message, category, fqid, target, exception) as a .NET ErrorRecord."""
    exc_type = str(rec.get("exception") or "Microsoft.PowerShell.Commands.WriteErrorException")
    category = _category(str(rec.get("category") or "NotSpecified"))
    target = str(rec.get("target") or "")
    return ErrorRecord(
        Exception=_exception(str(rec.get("message") or ""), exc_type),
        CategoryInfo=ErrorCategoryInfo(Category=category, Reason=exc_type.rsplit(".", 1)[-1],
                                       TargetName=target, TargetType="String" if target else ""),
        TargetObject=target or None,
        FullyQualifiedErrorId=str(rec.get("fqid") or exc_type.rsplit(".", 1)[-1]),
    )


class Shell:
    """What every shell shares: identity, owner, last use, a condition to long-poll on."""

    kind = "shell"

    def __init__(self, host: str, shell_id: str, resource_uri: str, owner: str, stop: Stop) -> None:
        self.host = host
        self.id = shell_id
        self.resource_uri = resource_uri
        self.owner = owner
        self.stop = stop
        self.cond = threading.Condition(threading.RLock())
        self.last_used = time.monotonic()
        self.threads: list[threading.Thread] = []
        self.closed = False
        self.gone = threading.Event()

    def touch(self) -> None:
        self.last_used = time.monotonic()

    def sleep(self, seconds: float) -> bool:
        """Sleep as a long operation does; True when cut short (shell deleted, endpoint stopping)."""
        deadline = time.monotonic() + seconds
        while True:
            if self.stop.event.is_set() or self.gone.is_set():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.gone.wait(min(left, 0.1))

    def wait(self, ready: Callable[[], bool], timeout: float) -> bool:
        """Wait (holding ``cond``) until ``ready()``, the timeout, or shutdown."""
        deadline = time.monotonic() + timeout
        while not ready():
            left = deadline - time.monotonic()
            if left <= 0 or self.stop.event.is_set() or self.closed:
                return ready()
            self.cond.wait(min(left, 0.25))
        return True

    def spawn(self, target: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=False)
        self.threads = [x for x in self.threads if x.is_alive()]
        self.threads.append(t)
        t.start()

    def close(self) -> None:
        self.gone.set()
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def join(self, timeout: float) -> None:
        for t in self.threads:
            t.join(timeout)


# -- PSRP ----------------------------------------------------------------------------------


class PSRPShell(Shell):
    """A runspace pool on psrpcore's server classes."""

    kind = "psrp"

    def __init__(self, host: str, shell_id: str, resource_uri: str, owner: str, stop: Stop, runner: Runner,
                 stretch: Callable[[], float]) -> None:
        super().__init__(host, shell_id, resource_uri, owner, stop)
        self.pool = ServerRunspacePool()
        self.runner = runner
        self.stretch = stretch
        self.outbox: dict[uuid.UUID | None, deque[bytes]] = {None: deque()}
        self.finished: set[uuid.UUID] = set()

    # all psrpcore calls happen under self.cond: the pool is not thread-safe
    def feed(self, data: bytes, pipeline_id: uuid.UUID | None) -> None:
        with self.cond:
            self.pool.receive_data(PSRPPayload(data, StreamType.default, pipeline_id))
            while True:
                event = self.pool.next_event()
                if event is None:
                    break
                self._on_event(event)
            self._drain()

    def _drain(self) -> None:
        while True:
            payload = self.pool.data_to_send(CHUNK)
            if payload is None:
                break
            self.outbox.setdefault(payload.pipeline_id, deque()).append(payload.data)
        self.cond.notify_all()

    def _on_event(self, event: Any) -> None:
        name = type(event).__name__
        if name in ("SetMaxRunspacesEvent", "SetMinRunspacesEvent", "ResetRunspaceStateEvent"):
            self.pool.runspace_availability_response(event.ci, True)
        elif name == "GetAvailableRunspacesEvent":
            self.pool.runspace_availability_response(event.ci, 1)
        elif name == "CreatePipelineEvent":
            pipe = self.pool.pipeline_table[event.pipeline_id]
            commands = list(event.pipeline.commands)
            # Running is not announced: a Windows host sends PIPELINE_STATE only when the pipeline ends.
            pipe._change_state(PSInvocationState.Running, emit=False)
            self.spawn(lambda: self._run(pipe, commands), f"lab-psrp-{self.host}")

    def command(self, command_id: str, first_fragment: bytes) -> str:
        pid = uuid.UUID(command_id) if command_id else uuid.uuid4()
        with self.cond:
            ServerPipeline(self.pool, pid)
            self.outbox[pid] = deque()
        self.feed(first_fragment, pid)
        return str(pid).upper()

    def pipeline(self, command_id: str | None) -> uuid.UUID | None:
        return uuid.UUID(command_id) if command_id else None

    def receive(self, command_id: str | None, timeout: float) -> tuple[bytes, bool] | None:
        """(data, done) for the pool or one pipeline; None when nothing came within ``timeout``."""
        target = self.pipeline(command_id)
        with self.cond:
            def ready() -> bool:
                return bool(self.outbox.get(target)) or (target is not None and target in self.finished)

            if not self.wait(ready, timeout):
                return None
            box = self.outbox.get(target, deque())
            out = bytearray()
            while box and (not out or len(out) + len(box[0]) <= RECEIVE_LIMIT):
                out += box.popleft()
            done = target is not None and target in self.finished and not box
            return bytes(out), done

    def signal(self, command_id: str, code: str) -> None:
        target = self.pipeline(command_id)
        with self.cond:
            pipe = self.pool.pipeline_table.get(target) if target else None
            if pipe is None:
                return
            if pipe.state in (PSInvocationState.Running, PSInvocationState.Stopping):
                pipe.stop()  # ctrl_c and terminate both end a running pipeline as Stopped
                self.finished.add(pipe.pipeline_id)
                self._drain()
            if code.lower().endswith("terminate"):
                pipe.close()
                self.outbox.pop(target, None)
                self.finished.discard(pipe.pipeline_id)

    # the command itself, on a worker thread
    def _run(self, pipe: ServerPipeline, commands: list[Any]) -> None:
        try:
            if len(commands) != 1 or not commands[0].is_script:
                raise scripts.NotATemplate("the lab endpoint runs one hvauto template per pipeline")
            run = scripts.from_psrp(str(commands[0].command_text), list(commands[0].parameters))
        except scripts.NotATemplate as exc:
            self._fail(pipe, {"message": f"The lab endpoint cannot run this pipeline: {exc}.",
                              "category": "NotImplemented", "fqid": "HvautoLabNotATemplate",
                              "exception": "System.NotSupportedException"})
            return
        stretch = self.stretch()
        live = stretch <= 0

        def listen(p: Progress) -> None:
            if live:
                self._progress(pipe, p)

        try:
            outcome = self.runner(run, listen)
        except Exception as exc:  # noqa: BLE001 - a lab bug must still end the pipeline, visibly
            self._fail(pipe, {"message": f"The lab failed to run {run.template}: {type(exc).__name__}: {exc}",
                              "category": "NotSpecified", "fqid": "HvautoLabInternalError",
                              "exception": "System.InvalidOperationException"})
            return
        if not live:
            self._pace(pipe, outcome.progress, stretch)
        self._finish(pipe, outcome)

    def _pace(self, pipe: ServerPipeline, progress: list[Progress], seconds: float) -> None:
        """A long operation: its progress records spread over ``seconds``, as a migration's would come."""
        steps = len(progress) + 1
        for p in progress:
            if self.sleep(seconds / steps):
                return
            self._progress(pipe, p)
        self.sleep(seconds / steps)

    def _progress(self, pipe: ServerPipeline, p: Progress) -> None:
        with self.cond:
            if pipe.state != PSInvocationState.Running:
                return
            pipe.write_progress(activity=p.activity or " ", activity_id=0, status_description=p.status or " ",
                                current_operation=p.operation or None, percent_complete=p.percent,
                                seconds_remaining=p.seconds_remaining)
            self._drain()

    def _fail(self, pipe: ServerPipeline, record: dict[str, Any]) -> None:
        with self.cond:
            if pipe.state != PSInvocationState.Running:
                return
            # A terminating error before the script ran: the pipeline itself fails with it.
            pipe._change_state(PSInvocationState.Failed, error_record(record))
            self.finished.add(pipe.pipeline_id)
            self._drain()

    def _finish(self, pipe: ServerPipeline, outcome: LabRun) -> None:
        if outcome.binding_error is not None:
            self._fail(pipe, outcome.binding_error)
            return
        with self.cond:
            if pipe.state != PSInvocationState.Running:
                return
            for text in outcome.warnings:
                pipe.write_warning(text)
            for rec in outcome.errors:
                r = error_record(rec)
                pipe.write_error(r.Exception, r.CategoryInfo, r.TargetObject, r.FullyQualifiedErrorId)
            pipe.write_output(json.dumps(outcome.doc, ensure_ascii=False, separators=(",", ":")))
            pipe.complete()
            self.finished.add(pipe.pipeline_id)
            self._drain()


# -- WinRS ---------------------------------------------------------------------------------

CLIXML_HEADER = "#< CLIXML\r\n"
_CLIXML_NS = "http://schemas.microsoft.com/powershell/2004/04"


def clixml_string(text: str) -> str:
    """CLIXML's string escaping: XML entities, and _xHHHH_ for control characters and a literal ``_x``."""
    out: list[str] = []
    for i, ch in enumerate(text):
        code = ord(ch)
        if code < 0x20 or 0x7F <= code < 0xA0 or (ch == "_" and text[i + 1:i + 2] in ("x", "X")):
            out.append(f"_x{code:04X}_")
        elif ch == "&":
            out.append("&amp;")
        elif ch == "<":
            out.append("&lt;")
        elif ch == ">":
            out.append("&gt;")
        else:
            out.append(ch)
    return "".join(out)


def error_view(rec: dict[str, Any]) -> list[str]:
    """An error record as Windows PowerShell's NormalView writes it to stderr."""
    exc_type = str(rec.get("exception") or "Microsoft.PowerShell.Commands.WriteErrorException")
    short = exc_type.rsplit(".", 1)[-1]
    target = str(rec.get("target") or "")
    category = str(rec.get("category") or "NotSpecified")
    where = f"({target}:String)" if target else "(:)"
    return [
        *str(rec.get("message") or "").splitlines(),
        f"    + CategoryInfo          : {category}: {where} [], {short}",
        f"    + FullyQualifiedErrorId : {rec.get('fqid') or short}",
        " ",
    ]


def progress_obj(p: Progress, ref: int) -> str:
    return (
        f'<Obj S="progress" RefId="{ref}"><TN RefId="{ref}"><T>System.Management.Automation.PSCustomObject</T>'
        f'<T>System.Object</T></TN><MS><I64 N="SourceId">1</I64><PR N="Record"><AV>{clixml_string(p.activity)}</AV>'
        f'<AI>0</AI>{"<S>" + clixml_string(p.operation) + "</S>" if p.operation else "<Nil />"}<PI>-1</PI>'
        f"<PC>{p.percent}</PC><T>Processing</T><SR>{p.seconds_remaining}</SR><SD>{clixml_string(p.status)}</SD>"
        "</PR></MS></Obj>"
    )


def clixml(items: list[str]) -> bytes:
    return (CLIXML_HEADER + f'<Objs Version="1.1.0.1" xmlns="{_CLIXML_NS}">' + "".join(items) + "</Objs>").encode()


@dataclass
class WinRSCommand:
    id: str
    executable: str
    arguments: list[str]
    stdin: bytearray = field(default_factory=bytearray)
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    started: bool = False
    done: bool = False
    exit_code: int = 0


class WinRSShell(Shell):
    """A cmd shell running ``powershell.exe``: the script arrives on stdin, answers on stdout/stderr."""

    kind = "winrs"

    def __init__(self, host: str, shell_id: str, resource_uri: str, owner: str, stop: Stop, runner: Runner,
                 stretch: Callable[[], float]) -> None:
        super().__init__(host, shell_id, resource_uri, owner, stop)
        self.runner = runner
        self.stretch = stretch
        self.commands: dict[str, WinRSCommand] = {}

    def command(self, command_id: str | None, executable: str, arguments: list[str]) -> str:
        cid = (command_id or str(uuid.uuid4())).upper()
        with self.cond:
            self.commands[cid] = WinRSCommand(cid, executable, arguments)
            exe = executable.replace("/", "\\").rsplit("\\", 1)[-1].lower()
            if exe not in ("powershell.exe", "powershell"):
                cmd = self.commands[cid]
                cmd.stderr += (f"'{executable}' is not recognized as an internal or external command,\r\n"
                               "operable program or batch file.\r\n").encode()
                cmd.exit_code, cmd.done = 1, True
                self.cond.notify_all()
        return cid

    def send(self, command_id: str, data: bytes, end: bool) -> bool:
        with self.cond:
            cmd = self.commands.get(command_id.upper())
            if cmd is None:
                return False
            cmd.stdin += data
            if end and not cmd.started and not cmd.done:
                cmd.started = True
                self.spawn(lambda: self._run(cmd), f"lab-winrs-{self.host}")
            return True

    def receive(self, command_id: str, timeout: float) -> tuple[bytes, bytes, bool, int] | None:
        with self.cond:
            cmd = self.commands.get(command_id.upper())
            if cmd is None:
                return b"", b"", True, 0

            def ready() -> bool:
                return bool(cmd.stdout or cmd.stderr or cmd.done)

            if not self.wait(ready, timeout):
                return None
            out, err = bytes(cmd.stdout), bytes(cmd.stderr)
            cmd.stdout.clear()
            cmd.stderr.clear()
            return out, err, cmd.done, cmd.exit_code

    def signal(self, command_id: str, code: str) -> None:
        with self.cond:
            cmd = self.commands.get(command_id.upper())
            if cmd is not None and code.lower().endswith("terminate"):
                cmd.done = True
                self.commands.pop(command_id.upper(), None)
            self.cond.notify_all()

    @staticmethod
    def script_text(stdin: bytes | bytearray) -> str:
        """stdin as the script: base64 of UTF-8 ended by ``!`` (hvauto's loader), else the text itself."""
        raw = bytes(stdin).strip()
        if raw.endswith(b"!"):
            try:
                return base64.b64decode(raw[:-1], validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                pass
        return raw.decode("utf-8", "replace")

    def _emit(self, cmd: WinRSCommand, *, stdout: bytes = b"", stderr: bytes = b"", exit_code: int | None = None) -> None:
        with self.cond:
            cmd.stdout += stdout
            cmd.stderr += stderr
            if exit_code is not None:
                cmd.exit_code, cmd.done = exit_code, True
            self.cond.notify_all()

    def _run(self, cmd: WinRSCommand) -> None:
        try:
            run = scripts.from_text(self.script_text(cmd.stdin))
        except scripts.NotATemplate as exc:
            lines = error_view({"message": f"The lab endpoint cannot run this script: {exc}.",
                                "category": "NotImplemented", "fqid": "HvautoLabNotATemplate",
                                "exception": "System.NotSupportedException"})
            self._emit(cmd, stderr=clixml([f'<S S="Error">{clixml_string(line + chr(13) + chr(10))}</S>'
                                           for line in lines]), exit_code=1)
            return
        stretch = self.stretch()
        live = stretch <= 0
        refs = iter(range(1, 1_000_000))

        def listen(p: Progress) -> None:
            if live:
                self._emit(cmd, stderr=clixml([progress_obj(p, next(refs))]))

        try:
            outcome = self.runner(run, listen)
        except Exception as exc:  # noqa: BLE001 - a lab bug must still end the command, visibly
            lines = error_view({"message": f"The lab failed to run {run.template}: {type(exc).__name__}: {exc}",
                                "fqid": "HvautoLabInternalError"})
            self._emit(cmd, stderr=clixml([f'<S S="Error">{clixml_string(x + chr(13) + chr(10))}</S>' for x in lines]),
                       exit_code=1)
            return
        if not live:
            steps = len(outcome.progress) + 1
            for p in outcome.progress:
                if self.sleep(stretch / steps):
                    return
                self._emit(cmd, stderr=clixml([progress_obj(p, next(refs))]))
            if self.sleep(stretch / steps):
                return
        items: list[str] = []
        for text in outcome.warnings:
            items.append(f'<S S="warning">{clixml_string(text + chr(13) + chr(10))}</S>')
        records = list(outcome.errors)
        if outcome.binding_error is not None:
            records.append(outcome.binding_error)
        for rec in records:
            items.extend(f'<S S="Error">{clixml_string(line + chr(13) + chr(10))}</S>' for line in error_view(rec))
        stdout = b""
        if outcome.binding_error is None:
            # powershell.exe writes through the console code page; ASCII JSON reads the same in any.
            stdout = (json.dumps(outcome.doc, ensure_ascii=True, separators=(",", ":")) + "\r\n").encode("ascii")
        self._emit(cmd, stdout=stdout, stderr=clixml(items) if items else b"",
                   exit_code=1 if outcome.binding_error is not None else 0)
