"""The lab back-end: runs a script against the simulated estate instead of a Windows host.

It plays the host's part faithfully: injected faults first (a host that is down, slow, or
failing its next calls), then authentication, then the template's own parameter binding
(unknown or missing parameters fail as PowerShell's binder would), then the handler in
one transaction. The handler's answer is wrapped in the same JSON document the real
template prints and parsed by the same code as a real host's output.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hvauto import versions
from hvauto.credentials import Credentials
from hvauto.errors import AuthError, ConnectError, ErrorRecord, OperationTimeout, QuotaError, TemplateError
from hvauto.inventory import HostConfig
from hvauto.remote.base import Progress, ProgressCallback, Result, parse_output
from hvauto.render import Renderer, default_renderer
from hvauto.script import Script

from .handlers import BEFORE_CALL, CmdletError, LabCall, handler_for
from .store import LabStore

_STORES: dict[str, LabStore] = {}


def store_for(path: str) -> LabStore:
    """One store per estate file in a process (its connections are per thread)."""
    store = _STORES.get(path)
    if store is None:
        store = _STORES.setdefault(path, LabStore(path))
    return store


def probe(cfg: HostConfig) -> list[Any]:
    """Reaching a simulated host, in the order of a real probe: its name, its WinRM port, its certificate.

    What the estate says about the host decides each stage (``network``: ``dns: false``, a
    certificate issued for another ``tls_name``, ``tls_expires_days``), and a host set
    ``--down`` by ``lab fault`` refuses the connection, as over the wire.
    """
    from hvauto.remote.probe import Stage

    assert cfg.lab_state
    store = store_for(cfg.lab_state)
    with store.transaction() as est:
        host = est.get("host", cfg.name) or {}
    net = dict(host.get("network") or {})
    address, port = cfg.address or cfg.name, cfg.effective_port
    if net.get("dns") is False:
        return [Stage("name", False, f"{address} does not resolve (no such host is known)",
                      f"check DNS for {address}, or set hosts.{cfg.name}.address in the inventory")]
    stages = [Stage("name", True, f"{address} resolves")]
    if store.fault(cfg.name).get("down"):
        return [*stages, Stage("tcp", False, f"no connection to {address}:{port} (connection refused)",
                               f"check that WinRM listens on {port} and that the firewall lets {port} through")]
    stages.append(Stage("tcp", True, f"{address}:{port} answers"))
    fqdn = str(host.get("fqdn") or address)
    tls_name = str(net.get("tls_name") or "")
    if tls_name and tls_name.lower() not in (address.lower(), fqdn.lower()):
        return [*stages, Stage("tls", False, f"the certificate of {address} is not for that name (it names "
                               f"{tls_name})", f"connect by a name the certificate carries (hosts.{cfg.name}.address "
                               f"= \"{tls_name}\"), or issue the WinRM certificate for {address}")]
    days = net.get("tls_expires_days")
    if days is not None and int(days) < 30:
        stages.append(Stage("tls", True, f"certificate of {address} expires in {int(days)} day(s)",
                            "renew the WinRM certificate before it expires", warning=True))
    else:
        stages.append(Stage("tls", True, f"certificate of {address} verified (the lab's own CA)"))
    return stages


class LabTransport:
    def __init__(self, cfg: HostConfig, creds: Credentials) -> None:
        assert cfg.lab_state, "the inventory guarantees lab_state for the lab transport"
        self.host = cfg.name
        self.cfg = cfg
        self.creds = creds
        self.store = store_for(cfg.lab_state)
        self._authenticated = False

    def close(self) -> None:
        self._authenticated = False

    def _authenticate(self) -> None:
        if self._authenticated:
            return
        if self.creds.password is not None:
            with self.store.transaction() as est:
                account = est.get("account", (self.creds.username or "").lower())
            if account is None or account["password"] != self.creds.password.reveal():
                raise AuthError("the user name or password is incorrect (HTTP 401)", host=self.host)
        elif self.cfg.auth not in ("kerberos", "negotiate"):
            raise AuthError(f"{self.cfg.auth} authentication needs a password", host=self.host)
        self._authenticated = True

    def _inject(self, script: Script) -> dict[str, Any]:
        """Play the host's faults for this call: before the script runs, or (``fail_on`` a Receive or a Signal)
        the fault to play after it ran, returned."""
        fault = self.store.take_fault(self.host, script.template)
        if not fault:
            return {}
        delay = float(fault.get("delay", 0) or 0)
        if delay:
            time.sleep(delay)
        if fault.get("down"):
            self.store.record_call(self.host, script.template, "unreachable")
            raise ConnectError("cannot connect: the host does not answer (connection refused)", host=self.host)
        if not fault.get("fail"):
            return {}
        if str(fault.get("fail_on") or "").lower() in ("receive", "signal") and fault.get("kind") != "permanent":
            return fault  # the request that carries the script went through: it runs, then the answer is lost
        self._fail(script, fault, sent=False)
        return {}

    def _fail(self, script: Script, fault: Mapping[str, Any], *, sent: bool) -> None:
        """The fault's error; ``sent``: the script ran and only its answer is lost (a fault on the Receive)."""
        kind = fault.get("kind", "transient")
        if kind != "permanent" and not sent:
            self.store.record_call(self.host, script.template, f"fault:{kind}")
        if kind == "transient":
            raise ConnectError("connection reset by peer (injected)", host=self.host, sent=sent)
        if kind in ("timeout", "hang"):
            # The client cannot tell a request that never arrived from an answer that never came.
            raise OperationTimeout("no answer before the read timeout (injected)", host=self.host, sent=True)
        if kind == "auth":
            raise AuthError("the user name or password is incorrect (HTTP 401, injected)", host=self.host, sent=sent)
        # The wire endpoint's own kinds, as close as an in-process call can come.
        if kind == "http503":
            raise ConnectError("HTTP 503 (injected)", host=self.host, sent=sent)
        if kind == "reset":
            # A reset connection says nothing of whether the request was read: the script may have run.
            raise ConnectError("connection reset (injected)", host=self.host, sent=True)
        if kind == "quota":
            raise QuotaError("WinRM quota: ERROR_WSMAN_QUOTA_MAX_SHELLS (injected)", host=self.host, sent=sent)
        raise CmdletError("The operation failed because of an injected permanent fault.",
                          category="NotSpecified", fqid="HvautoLabInjectedFault")

    def run(self, script: Script, *, timeout: float | None = None,
            on_progress: ProgressCallback | None = None) -> Result:
        started = time.monotonic()
        if handler_for(script.template) is None:
            raise TemplateError(f"the lab has no handler for template {script.template!r}")
        try:
            after = self._inject(script)
            self._authenticate()
        except CmdletError as exc:
            self.store.record_call(self.host, script.template, "error")
            outcome = LabRun(doc={"ok": False, "result": None, "error": exc.record})
        else:
            outcome = execute(self.store, self.host, script.template, script.version, script.params)
            if after and str(after.get("fail_on")).lower() == "receive":
                self._fail(script, after, sent=True)
        errors = [ErrorRecord.from_dict(e) for e in outcome.errors]
        if on_progress:
            for p in outcome.progress:
                on_progress(p)
        return parse_output(self.host, script.template, [json.dumps(outcome.doc)], stream_errors=errors,
                            warnings=outcome.warnings, progress=outcome.progress, started=started)


@dataclass
class LabRun:
    """What one template run on a lab host produced, before any transport shapes it.

    ``doc`` is the JSON document the real template prints (its own try/catch turns a
    failing cmdlet into ``ok: false``). ``binding_error`` is set when the run failed before
    the script body could start (PowerShell's parameter binder, a script for a newer
    Windows): a real host fails the pipeline itself then, and prints no document.
    """

    doc: dict[str, Any]
    binding_error: dict[str, Any] | None = None
    progress: list[Progress] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


def execute(
    store: LabStore,
    host_name: str,
    template: str,
    version: str,
    params: Mapping[str, Any],
    *,
    renderer: Renderer | None = None,
    listener: ProgressCallback | None = None,
) -> LabRun:
    """Run ``template`` with ``params`` on lab host ``host_name``: the one code path behind every lab transport.

    The in-process :class:`LabTransport` and the WinRM/PSRP endpoint (:mod:`hvauto.lab.wire`)
    both call this. ``listener`` hears progress records as a handler reports them.
    """
    handler = handler_for(template)
    if handler is None:
        raise TemplateError(f"the lab has no handler for template {template!r}")
    meta = (renderer or default_renderer()).meta(template)
    bound = False
    try:
        with store.transaction() as est:
            host = est.get("host", host_name)
            if host is None:
                raise ConnectError(f"no such host in the lab estate ({store.path})", host=host_name)
            if versions.index(version) > versions.index(host["os"]):
                # A script rendered for a newer Windows calls parameters this host lacks.
                raise CmdletError(
                    f"The script was written for {versions.label(version)}; this host runs "
                    f"{versions.label(host['os'])}: a parameter cannot be found that matches the request.",
                    category="InvalidArgument", fqid="NamedParameterNotFound",
                    exception="System.Management.Automation.ParameterBindingException")
            unknown = sorted(set(params) - set(meta.params))
            if unknown:
                raise CmdletError(f"A parameter cannot be found that matches parameter name '{unknown[0]}'.",
                                  category="InvalidArgument", fqid="NamedParameterNotFound",
                                  exception="System.Management.Automation.ParameterBindingException")
            values = {name: params.get(name) for name in meta.params}
            call = LabCall(host=host, params=values, estate=est, store=store, version=version, now=time.time(),
                           listener=listener)
            bound = True
            for hook in BEFORE_CALL:
                hook(call)
            failed: CmdletError | None = None
            try:
                result = handler(call)
            except CmdletError as exc:
                # The script stopped at a failing cmdlet: what it changed before that stays changed (a PowerShell
                # script is no transaction; Windows rolls nothing back). The transaction commits.
                failed = exc
    except CmdletError as exc:
        # Before the body ran (binding, a script for a newer Windows): nothing changed.
        store.record_call(host_name, template, "error")
        return LabRun(doc={"ok": False, "result": None, "error": exc.record},
                      binding_error=None if bound else exc.record)
    if failed is not None:
        store.record_call(host_name, template, "error")
        return LabRun(doc={"ok": False, "result": None, "error": failed.record})
    store.record_call(host_name, template, "ok" if not call.errors else "error")
    return LabRun(doc={"ok": True, "result": result, "error": None}, progress=list(call.progress),
                  warnings=list(call.warnings), errors=list(call.errors))


__all__ = ["LabRun", "LabTransport", "Progress", "execute", "store_for"]
