"""The lab's WS-Management endpoint: WinRM on loopback, in front of the simulated estate.

One listening socket serves every lab host; the host is the last segment of the request
path (``/wsman/hostA``), so one port and one certificate (for 127.0.0.1) serve the whole
estate and nothing has to resolve a lab host name. A request without a host segment
falls back to its ``Host`` header.

Each request goes through, in order: the request counter (per host and action), the
host's injected wire faults (latency, down, 503, reset, hung, 401, quota; see
``hvauto lab fault``), HTTP Basic authentication against the estate's accounts, then the
action. PSRP shells run on psrpcore's server classes; WinRS cmd shells emulate the
``powershell.exe`` that hvauto's WinRS back-end starts. Every template runs through
:func:`hvauto.lab.transport.execute`, as in the in-process lab.
"""

from __future__ import annotations

import base64
import binascii
import logging
import select
import socket
import ssl
import struct
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from hvauto.lab.handlers import CmdletError
from hvauto.lab.store import LabStore
from hvauto.lab.transport import LabRun, execute
from hvauto.remote.base import Progress
from hvauto.render import Renderer, default_renderer

from . import scripts, soap
from .shells import PSRPShell, Shell, Stop, WinRSShell

log = logging.getLogger("hvauto.lab.wire")

PSRP_URI = "http://schemas.microsoft.com/powershell/microsoft.powershell"
#: WinRM's MaxShellsPerUser default on Windows Server 2012 and later.
MAX_SHELLS_PER_USER = 30
#: How long a "hang" fault holds a request when the client never gives up.
HANG_LIMIT = 600.0
#: WinRM's IdleTimeout default (2 hours): shells a client forgot are dropped after it.
IDLE_TIMEOUT = 7200.0
#: Far above any MaxEnvelopeSize a client announces: a larger body is refused unread.
MAX_BODY = 8 * 1024 * 1024


@dataclass(frozen=True)
class TLSFiles:
    cert: Path
    key: Path


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], endpoint: WireServer) -> None:
        self.endpoint = endpoint
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake happens here, on the connection's own thread, not in accept().
        if self.endpoint.tls_context is not None:
            try:
                request = self.endpoint.tls_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                log.debug("TLS handshake failed: %s", exc)
                request.close()
                return
        self.endpoint._connections.add(request)
        try:
            super().finish_request(request, client_address)
        finally:
            self.endpoint._connections.discard(request)
            if isinstance(request, ssl.SSLSocket):  # shutdown_request() closes only the socket it accepted
                self.shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("%s " + format, self.client_address[0], *args)

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle and delayed ACK add ~40 ms to each answer.
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionError, ssl.SSLError, OSError, ValueError):
            self.close_connection = True
        finally:
            self.server.endpoint.store.close()  # this thread's SQLite connection

    def finish(self) -> None:
        try:
            super().finish()
        except (OSError, ValueError):
            pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.server.endpoint.handle(self)

    def do_GET(self) -> None:  # noqa: N802
        self.reply(405, b"")

    def reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        if body:
            self.send_header("Content-Type", "application/soap+xml;charset=UTF-8")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def reset(self) -> None:
        """Drop the connection with a TCP RST, as a crashed service or a middlebox would."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            raw = self.connection
            if isinstance(raw, ssl.SSLSocket):
                raw = socket.socket(fileno=raw.detach())
            raw.close()
        except OSError:
            pass

    def client_gone(self) -> bool:
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            gone: bool = self.connection.recv(1, socket.MSG_PEEK) == b""
            return gone
        except (OSError, ValueError, ssl.SSLError):
            return True


class WireServer:
    """``hvauto lab serve``: start(), then ``port``/``url(host)``; stop() leaves no thread or socket behind."""

    def __init__(
        self,
        state: str | Path,
        *,
        hosts: Sequence[str] | None = None,
        address: str = "127.0.0.1",
        port: int = 0,
        tls: TLSFiles | None = None,
        renderer: Renderer | None = None,
        max_shells: int = MAX_SHELLS_PER_USER,
    ) -> None:
        self.store = LabStore(state)
        self.renderer = renderer
        self.max_shells = max_shells
        self.stop_signal = Stop()
        self.tls_context: ssl.SSLContext | None = None
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(str(tls.cert), str(tls.key))
            self.tls_context = ctx
        with self.store.transaction() as est:
            known = {str(h["name"]).lower(): str(h["name"]) for h in est.all("host")}
        if hosts:
            unknown = [h for h in hosts if h.lower() not in known]
            if unknown:
                raise ValueError(f"no such lab host(s): {', '.join(unknown)}")
            known = {h.lower(): known[h.lower()] for h in hosts}
        self.hosts = known
        self.shells: dict[str, Shell] = {}
        self._shells_lock = threading.Lock()
        self._counter: Counter[tuple[str, str]] = Counter()
        self._unsaved: Counter[tuple[str, str, int]] = Counter()
        self._saver_thread = threading.Thread(target=self._saver, name="hvauto-lab-wire-counts", daemon=False)
        self._counter_lock = threading.Lock()
        self._connections: set[Any] = set()
        self._httpd = _HTTPServer((address, port), self)
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def scheme(self) -> str:
        return "https" if self.tls_context is not None else "http"

    def url(self, host: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/wsman/{host}"

    def start(self) -> WireServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="hvauto-lab-wire", daemon=False)
        self._thread.start()
        self._saver_thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        self.stop_signal.event.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        for conn in list(self._connections):  # wake handler threads parked on keep-alive reads
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        with self._shells_lock:
            shells, self.shells = list(self.shells.values()), {}
        for sh in shells:
            sh.close()
        self._httpd.server_close()  # joins the connection threads
        for sh in shells:
            sh.join(30)
        if self._saver_thread.is_alive():
            self._saver_thread.join()
        self._save_counts()
        self.store.close()

    def __enter__(self) -> WireServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the request counter -----------------------------------------------------------------
    def requests(self, host: str | None = None, action: str | None = None) -> int:
        with self._counter_lock:
            return sum(n for (h, a), n in self._counter.items()
                       if (host is None or h == host.lower()) and (action is None or a == action))

    def request_counts(self) -> dict[tuple[str, str], int]:
        with self._counter_lock:
            return dict(self._counter)

    def reset_counts(self) -> None:
        with self._counter_lock:
            self._counter.clear()

    def _count(self, host: str, action: str, status: int) -> None:
        with self._counter_lock:
            self._counter[(host.lower(), action)] += 1
            self._unsaved[(host.lower(), action, status)] += 1

    def _save_counts(self) -> None:
        """Write the counts to the estate (``hvauto lab calls --wire``), off the request path."""
        with self._counter_lock:
            unsaved, self._unsaved = self._unsaved, Counter()
        if unsaved:
            self.store.record_requests(unsaved)

    def _saver(self) -> None:
        try:
            while not self.stop_signal.event.wait(1.0):
                self._save_counts()
        finally:
            self.store.close()

    # -- one request -------------------------------------------------------------------------
    def _route(self, h: _Handler) -> str | None:
        parts = [p for p in h.path.split("?", 1)[0].split("/") if p]
        if len(parts) == 2 and parts[0].lower() == "wsman":
            return self.hosts.get(parts[1].lower())
        if len(parts) == 1 and parts[0].lower() == "wsman":
            name = (h.headers.get("Host") or "").rsplit(":", 1)[0].split(".", 1)[0].lower()
            if name in self.hosts:
                return self.hosts[name]
            if len(self.hosts) == 1:
                return next(iter(self.hosts.values()))
        return None

    def _authenticated(self, h: _Handler) -> bool:
        header = h.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        account = self.store.peek("account", user.lower())
        return account is not None and account.get("password") == password

    def handle(self, h: _Handler) -> None:
        try:
            length = int(h.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            h.close_connection = True
            h.reply(413 if length > 0 else 400, b"")
            return
        data = h.rfile.read(length) if length else b""
        host = self._route(h)
        if host is None:
            h.reply(404, b"")
            return
        req: soap.Request | None = None
        bad: soap.SoapError | None = None
        try:
            req = soap.parse(data)
            action = req.action
        except soap.SoapError as exc:
            action, bad = "Invalid", exc
        fault = self.store.fault(host)
        delay = float(fault.get("delay", 0) or 0)
        if delay and self.stop_signal.event.wait(delay):
            h.reset()
            return
        if fault.get("down"):
            self._count(host, action, 0)
            h.reset()
            return
        kind = self.store.take_wire_fault(host, action)
        if kind is not None and self._inject(h, host, action, kind, req):
            return
        if not self._authenticated(h):
            self._count(host, action, 401)
            h.reply(401, b"", {"WWW-Authenticate": 'Basic realm="WSMAN"'})
            return
        if req is None:
            assert bad is not None
            self._count(host, action, 500)
            h.reply(500, soap.fault("", bad.code, bad.reason, subcode=bad.subcode, machine=host))
            return
        self._reap(host, float(fault.get("idle_timeout", 0) or 0) or IDLE_TIMEOUT)
        try:
            status, body = self._dispatch(h, host, req)
        except soap.SoapError as exc:
            status, body = 500, soap.fault(req.message_id, exc.code, exc.reason, subcode=exc.subcode, machine=host)
        self._count(host, action, status)
        h.reply(status, body)

    def _inject(self, h: _Handler, host: str, action: str, kind: str, req: soap.Request | None) -> bool:
        """Answer with the injected fault; False when the fault is not the wire's to play."""
        if kind in ("http503", "transient"):
            self._count(host, action, 503)
            h.reply(503, b"", {"Retry-After": "1"})
        elif kind == "reset":
            self._count(host, action, 0)
            h.reset()
        elif kind in ("hang", "timeout"):
            self._count(host, action, 0)
            deadline = time.monotonic() + HANG_LIMIT
            while time.monotonic() < deadline and not h.client_gone():
                if self.stop_signal.event.wait(0.2):
                    break
            h.reset()
        elif kind == "auth":
            self._count(host, action, 401)
            h.reply(401, b"", {"WWW-Authenticate": 'Basic realm="WSMAN"'})
        elif kind == "quota":
            self._count(host, action, 500)
            h.reply(500, soap.quota_fault(req, host, self.max_shells) if req else b"")
        else:
            return False
        return True

    def _reap(self, host: str, idle_timeout: float) -> None:
        """WinRM drops shells idle longer than IdleTimeout; the lab's is a fault knob."""
        if idle_timeout <= 0:
            return
        now = time.monotonic()
        with self._shells_lock:
            gone = [s for s in self.shells.values() if s.host == host and now - s.last_used > idle_timeout]
            for s in gone:
                del self.shells[s.id]
        for s in gone:
            s.close()

    def _shell(self, req: soap.Request, host: str) -> Shell:
        shell_id = req.selectors.get("ShellId", "").upper()
        with self._shells_lock:
            shell = self.shells.get(shell_id)
        if shell is None or shell.host != host:
            raise _ShellNotFound(shell_id)
        shell.touch()
        return shell

    def _dispatch(self, h: _Handler, host: str, req: soap.Request) -> tuple[int, bytes]:
        try:
            handler = getattr(self, f"_do_{req.action.lower()}")
            result: tuple[int, bytes] = handler(h, host, req)
            return result
        except _ShellNotFound as exc:
            return 500, soap.shell_not_found_fault(req, exc.shell_id, host)

    def _runner(self, host: str) -> Callable[[scripts.TemplateRun, Callable[[Progress], None]], LabRun]:
        def run(tr: scripts.TemplateRun, listen: Callable[[Progress], None]) -> LabRun:
            try:
                try:
                    scripts.verify(tr, self.renderer or default_renderer())
                except scripts.NotATemplate as exc:
                    record = {"message": f"The lab endpoint cannot run this script: {exc}.", "category": "NotImplemented",
                              "fqid": "HvautoLabNotATemplate", "target": "",
                              "exception": "System.NotSupportedException", "terminating": True}
                    self.store.record_call(host, tr.template, "error")
                    return LabRun(doc={"ok": False, "result": None, "error": record}, binding_error=record)
                fault = self.store.fault(host)
                if fault.get("kind") == "permanent" and int(fault.get("fail_next", 0) or 0) > 0:
                    self.store.take_fault(host)
                    injected = CmdletError("The operation failed because of an injected permanent fault.",
                                      category="NotSpecified", fqid="HvautoLabInjectedFault")
                    self.store.record_call(host, tr.template, "error")
                    return LabRun(doc={"ok": False, "result": None, "error": injected.record})
                return execute(self.store, host, tr.template, tr.version, tr.params, renderer=self.renderer,
                               listener=listen)
            finally:
                self.store.close()

        return run

    def _stretch(self, host: str) -> Callable[[], float]:
        return lambda: float(self.store.fault(host).get("stretch", 0) or 0)

    # -- actions -----------------------------------------------------------------------------
    def _do_create(self, h: _Handler, host: str, req: soap.Request) -> tuple[int, bytes]:
        shell_el = req.child("rsp:Shell")
        if shell_el is None:
            raise soap.SoapError(soap.INVALID_MESSAGE, "The Create request has no rsp:Shell body.")
        with self._shells_lock:
            if sum(1 for s in self.shells.values() if s.host == host) >= self.max_shells:
                return 500, soap.quota_fault(req, host, self.max_shells)
        shell_id = (shell_el.get("ShellId") or str(uuid.uuid4())).upper()
        owner = "LAB\\Administrator"
        uri = req.resource_uri
        inputs = shell_el.findtext("rsp:InputStreams", "stdin", soap.NS) or "stdin"
        outputs = shell_el.findtext("rsp:OutputStreams", "stdout stderr", soap.NS) or "stdout stderr"
        shell: Shell
        if uri.lower() == PSRP_URI:
            creation = shell_el.findtext("pwsh:creationXml", "", soap.NS) or ""
            psrp = PSRPShell(host, shell_id, uri, owner, self.stop_signal, self._runner(host), self._stretch(host))
            psrp.feed(base64.b64decode(creation), None)
            shell = psrp
        elif uri.lower() == soap.CMD_URI:
            shell = WinRSShell(host, shell_id, uri, owner, self.stop_signal, self._runner(host), self._stretch(host))
        else:
            raise soap.SoapError(2150858811, f"The WS-Management service cannot process the request. The resource "
                                 f"URI {uri} was not found.", "w:DestinationUnreachable")
        with self._shells_lock:
            self.shells[shell_id] = shell
        return 200, soap.shell_created(req, self.url(host), shell_id, uri, owner=owner,
                                       client_ip=h.client_address[0], input_streams=inputs, output_streams=outputs)

    def _do_get(self, h: _Handler, host: str, req: soap.Request) -> tuple[int, bytes]:
        shell = self._shell(req, host)
        body = soap.shell_info(shell.id, shell.resource_uri, owner=shell.owner, client_ip=h.client_address[0],
                               input_streams="stdin pr", output_streams="stdout")
        return 200, soap.response(req, body)

    def _do_delete(self, h: _Handler, host: str, req: soap.Request) -> tuple[int, bytes]:
        shell = self._shell(req, host)
        with self._shells_lock:
            self.shells.pop(shell.id, None)
        shell.close()
        return 200, soap.response(req)

    def _do_command(self, h: _Handler, host: str, req: soap.Request) -> tuple[int, bytes]:
        shell = self._shell(req, host)
        line = req.child("rsp:CommandLine")
        if line is None:
            raise soap.SoapError(soap.INVALID_MESSAGE, "The Command request has no rsp:CommandLine body.")
        args = [a.text or "" for a in line.findall("rsp:Arguments", soap.NS)]
        if isinstance(shell, PSRPShell):
            cid = shell.command(line.get("CommandId") or "", base64.b64decode(args[0]) if args else b"")
        elif isinstance(shell, WinRSShell):
            cid = shell.command(line.get("CommandId"), line.findtext("rsp:Command", "", soap.NS) or "", args)
        else:  # pragma: no cover - every shell is one of the two
            raise soap.SoapError(soap.ACTION_NOT_SUPPORTED, "This shell takes no commands.")
        body = soap.el("rsp", "CommandResponse")
        soap.el("rsp", "CommandId", cid, parent=body)
        return 200, soap.response(req, body)

    def _do_send(self, h: _Handler, host: str, req: soap.Request) -> tuple[int, bytes]:
        shell = self._shell(req, host)
        for stream in req.body.findall("rsp:Send/rsp:Stream", soap.NS):
            data = base64.b64decode(stream.text or "")
            cid = stream.get("CommandId")
            if isinstance(shell, PSRPShell):
                shell.feed(data, uuid.UUID(cid) if cid else None)
            elif isinstance(shell, WinRSShell):
                shell.send(cid or "", data, (stream.get("End") or "").lower() == "true")
        return 200, soap.response(req, soap.el("rsp", "SendResponse"))

    def _do_signal(self, h: _Handler, host: str, req: soap.Request) -> tuple[int, bytes]:
        shell = self._shell(req, host)
        sig = req.child("rsp:Signal")
        if sig is not None:
            code = sig.findtext("rsp:Code", "", soap.NS) or ""
            cid = sig.get("CommandId") or ""
            if isinstance(shell, (PSRPShell, WinRSShell)):
                shell.signal(cid, code)
        return 200, soap.response(req, soap.el("rsp", "SignalResponse"))

    def _do_receive(self, h: _Handler, host: str, req: soap.Request) -> tuple[int, bytes]:
        shell = self._shell(req, host)
        desired = req.child("rsp:Receive/rsp:DesiredStream")
        cid = desired.get("CommandId") if desired is not None else None
        # Answer a little before the client's OperationTimeout, as WinRM does.
        wait = max(0.0, req.operation_timeout - 0.5)
        body = soap.el("rsp", "ReceiveResponse")
        done_state = f"{soap.SHELL_URI}/CommandState/Done"
        if isinstance(shell, PSRPShell):
            got = shell.receive(cid, wait)
            if got is None:
                return 500, soap.operation_timeout_fault(req, host)
            data, done = got
            attrs = {"Name": "stdout"}
            if cid:
                attrs["CommandId"] = cid
            soap.el("rsp", "Stream", base64.b64encode(data).decode("ascii"), attrs, parent=body)
            if cid:
                state = done_state if done else f"{soap.SHELL_URI}/CommandState/Running"
                soap.el("rsp", "CommandState", None, {"CommandId": cid, "State": state}, parent=body)
        elif isinstance(shell, WinRSShell):
            got_cmd = shell.receive(cid or "", wait)
            if got_cmd is None:
                return 500, soap.operation_timeout_fault(req, host)
            out, err, done, code = got_cmd
            for name, chunk in (("stdout", out), ("stderr", err)):
                attrs = {"Name": name, "CommandId": cid or ""}
                if done:
                    attrs["End"] = "true"
                soap.el("rsp", "Stream", base64.b64encode(chunk).decode("ascii") if chunk else None, attrs,
                        parent=body)
            state_el = soap.el("rsp", "CommandState", None,
                               {"CommandId": cid or "",
                                "State": done_state if done else f"{soap.SHELL_URI}/CommandState/Running"},
                               parent=body)
            if done:
                soap.el("rsp", "ExitCode", str(code), parent=state_el)
        return 200, soap.response(req, body)


class _ShellNotFound(Exception):
    def __init__(self, shell_id: str) -> None:
        super().__init__(shell_id)
        self.shell_id = shell_id


@contextmanager
def serving(state: str | Path, **kw: Any) -> Iterator[WireServer]:
    server = WireServer(state, **kw).start()
    try:
        yield server
    finally:
        server.stop()


__all__ = ["TLSFiles", "WireServer", "serving"]
