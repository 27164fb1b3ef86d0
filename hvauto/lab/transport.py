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
from typing import Any

from hvauto import versions
from hvauto.credentials import Credentials
from hvauto.errors import AuthError, ConnectError, ErrorRecord, OperationTimeout, TemplateError
from hvauto.inventory import HostConfig
from hvauto.remote.base import Progress, ProgressCallback, Result, Script, parse_output
from hvauto.render import default_renderer

from .handlers import CmdletError, LabCall, handler_for
from .store import LabStore

_STORES: dict[str, LabStore] = {}


def store_for(path: str) -> LabStore:
    """One store per estate file in a process (its connections are per thread)."""
    store = _STORES.get(path)
    if store is None:
        store = _STORES.setdefault(path, LabStore(path))
    return store


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

    def _inject(self, script: Script) -> None:
        fault = self.store.take_fault(self.host)
        if not fault:
            return
        delay = float(fault.get("delay", 0) or 0)
        if delay:
            time.sleep(delay)
        if fault.get("down"):
            self.store.record_call(self.host, script.template, "unreachable")
            raise ConnectError("cannot connect: the host does not answer (connection refused)", host=self.host)
        if fault.get("fail"):
            kind = fault.get("kind", "transient")
            if kind != "permanent":
                self.store.record_call(self.host, script.template, f"fault:{kind}")
            if kind == "transient":
                raise ConnectError("connection reset by peer (injected)", host=self.host, sent=False)
            if kind == "timeout":
                raise OperationTimeout("no answer before the read timeout (injected)", host=self.host, sent=True)
            if kind == "auth":
                raise AuthError("the user name or password is incorrect (HTTP 401, injected)", host=self.host)
            raise CmdletError("The operation failed because of an injected permanent fault.",
                              category="NotSpecified", fqid="HvautoLabInjectedFault")

    def run(self, script: Script, *, timeout: float | None = None,
            on_progress: ProgressCallback | None = None) -> Result:
        started = time.monotonic()
        handler = handler_for(script.template)
        if handler is None:
            raise TemplateError(f"the lab has no handler for template {script.template!r}")
        try:
            self._inject(script)
            self._authenticate()
            doc, call = self._execute(script, handler)
        except CmdletError as exc:
            doc, call = {"ok": False, "result": None, "error": exc.record}, None
            self.store.record_call(self.host, script.template, "error")
        errors = [ErrorRecord.from_dict(e) for e in (call.errors if call else [])]
        progress = call.progress if call else []
        if on_progress:
            for p in progress:
                on_progress(p)
        return parse_output(self.host, script.template, [json.dumps(doc)], stream_errors=errors,
                            warnings=call.warnings if call else [], progress=progress, started=started)

    def _execute(self, script: Script, handler: Any) -> tuple[dict[str, Any], LabCall]:
        meta = default_renderer().meta(script.template)
        with self.store.transaction() as est:
            host = est.get("host", self.host)
            if host is None:
                raise ConnectError(f"no such host in the lab estate ({self.store.path})", host=self.host)
            if versions.index(script.version) > versions.index(host["os"]):
                # A script rendered for a newer Windows calls parameters this host lacks.
                raise CmdletError(
                    f"The script was written for {versions.label(script.version)}; this host runs "
                    f"{versions.label(host['os'])}: a parameter cannot be found that matches the request.",
                    category="InvalidArgument", fqid="NamedParameterNotFound",
                    exception="System.Management.Automation.ParameterBindingException")
            unknown = sorted(set(script.params) - set(meta.params))
            if unknown:
                raise CmdletError(f"A parameter cannot be found that matches parameter name '{unknown[0]}'.",
                                  category="InvalidArgument", fqid="NamedParameterNotFound",
                                  exception="System.Management.Automation.ParameterBindingException")
            params = {name: script.params.get(name) for name in meta.params}
            call = LabCall(host=host, params=params, estate=est, store=self.store, version=script.version,
                           now=time.time())
            result = handler(call)
        self.store.record_call(self.host, script.template, "ok" if not call.errors else "error")
        return {"ok": True, "result": result, "error": None}, call


__all__ = ["LabTransport", "Progress", "store_for"]
