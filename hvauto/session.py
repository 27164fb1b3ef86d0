"""The engine's handle on an estate: render, run with retry, fan out, observe.

A :class:`Session` keeps one transport per host (one PSRP runspace pool, reused by
every step of a command), runs one step at a time per host, and runs hosts
concurrently. Observers (the runbook journal, logging) hear every call. Operations
in :mod:`hvauto.ops` are written against this class only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from . import contract, versions
from .credentials import CredentialProvider
from .errors import HostOutcome, HostsFailedError, HvautoError, RemoteScriptError, TemplateError, TransportError
from .inventory import HostConfig, Inventory
from .remote import Progress, ProgressCallback, Result, Script, Transport, open_transport
from .remote.retry import RetryPolicy, call_with_retry
from .render import Renderer, default_renderer, has_placeholder

T = TypeVar("T")
#: Hosts contacted at once by default (``hvauto --forks N`` changes it): a fan-out over N hosts
#: runs min(N, MAX_WORKERS) at a time. Each host still runs one step at a time on its one pool,
#: so a host never holds more than one WinRM shell (MaxShellsPerUser) for hvauto.
MAX_WORKERS = 64
log = logging.getLogger("hvauto.session")
#: Told, once per call, when an answer takes :data:`SLOW_CALL` seconds (the CLI shows it on stderr).
wait_log = logging.getLogger("hvauto.wait")
SLOW_CALL = 10.0


class Observer(Protocol):
    """Hears every remote call (the runbook journal is one)."""

    def call_started(self, host: str, script: Script) -> None: ...

    def call_finished(self, host: str, script: Script, result: Result | None, error: BaseException | None) -> None: ...


@dataclass
class GroupResult:
    """Per-host outcomes of a fan-out, in the order the hosts were given (fabric's GroupResult)."""

    outcomes: dict[str, HostOutcome] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes.values())

    def values(self) -> dict[str, Any]:
        return {h: o.value for h, o in self.outcomes.items() if o.ok}

    def failed(self) -> dict[str, HvautoError]:
        return {h: o.error for h, o in self.outcomes.items() if not o.ok and o.error is not None}

    def raise_if_failed(self) -> None:
        if self.ok:
            return
        if len(self.outcomes) == 1:
            # One host: its own error says more than "1 of 1 failed".
            (outcome,) = self.outcomes.values()
            if outcome.error is not None:
                raise outcome.error
        raise HostsFailedError(self.outcomes)


class Session:
    def __init__(
        self,
        inventory: Inventory,
        *,
        credentials: CredentialProvider | None = None,
        retry: RetryPolicy | None = None,
        renderer: Renderer | None = None,
        max_workers: int = MAX_WORKERS,
        observers: Iterable[Observer] = (),
    ) -> None:
        self.inventory = inventory
        self.credentials = credentials or CredentialProvider(base_dir=inventory.base_dir)
        self.retry = retry or RetryPolicy()
        self.renderer = renderer or default_renderer()
        self.max_workers = max_workers
        self.observers: list[Observer] = list(observers)
        self._transports: dict[str, Transport] = {}
        self._host_locks: dict[str, threading.Lock] = {}
        self._versions: dict[str, str] = {}
        self._lock = threading.Lock()
        #: Set by ``--render``: a host may not be contacted (reaching one is a bug, never a fallback).
        self.offline = False
        self._inflight: dict[int, tuple[str, str, float]] = {}
        self._next_token = 0
        self._watchdog: threading.Thread | None = None

    # -- context -----------------------------------------------------------------------------------
    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every host's transport, concurrently: one slow Delete must not hold up the others."""
        with self._lock:
            transports, self._transports = list(self._transports.values()), {}

        def close_one(t: Transport) -> None:
            try:
                t.close()
            except Exception:  # noqa: BLE001 - closing must not mask the command's own outcome
                log.debug("closing %s failed", t.host, exc_info=True)

        if len(transports) <= 1:
            for t in transports:
                close_one(t)
            return
        with ThreadPoolExecutor(max_workers=min(len(transports), self.max_workers),
                                thread_name_prefix="hvauto-close") as pool:
            list(pool.map(close_one, transports))

    # -- hosts -------------------------------------------------------------------------------------
    def host(self, name: str) -> HostConfig:
        return self.inventory.host(name)

    def _host_lock(self, host: str) -> threading.Lock:
        with self._lock:
            return self._host_locks.setdefault(host, threading.Lock())

    def transport(self, host: str) -> Transport:
        cfg = self.host(host)
        if self.offline:
            raise RuntimeError(f"{cfg.name}: a host was to be contacted while rendering (--render contacts none)")
        with self._lock:
            existing = self._transports.get(cfg.name)
        if existing is not None:
            return existing
        transport = open_transport(cfg, self.credentials.for_host(cfg))
        with self._lock:
            return self._transports.setdefault(cfg.name, transport)

    def os_version(self, host: str) -> str:
        """The host's Windows Server version: from the inventory, else asked once (a PS 3.0-safe script)."""
        cfg = self.host(host)
        if cfg.os:
            return cfg.os
        if cfg.name not in self._versions:
            facts = self.run(cfg.name, "host_facts", version=versions.OLDEST).data
            found = versions.from_kernel_version(str(facts["os"]["version"]))
            self._versions[cfg.name] = found or versions.OLDEST
        return self._versions[cfg.name]

    def known_version(self, host: str) -> str | None:
        cfg = self.host(host)
        return cfg.os or self._versions.get(cfg.name)

    def learn_version(self, host: str, version: str | None) -> None:
        """Keep the version a host_facts read found, so that no later step asks the host again."""
        cfg = self.host(host)
        if version and not cfg.os:
            self._versions.setdefault(cfg.name, version)

    # -- scripts -----------------------------------------------------------------------------------
    def render(self, host: str, template: str, params: Mapping[str, Any] | None = None,
               *, version: str | None = None) -> Script:
        return self.renderer.render(template, version or self.os_version(host), params)

    def run(
        self,
        host: str,
        template: str,
        params: Mapping[str, Any] | None = None,
        *,
        version: str | None = None,
        check: bool = True,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = None,
    ) -> Result:
        """Render ``template`` for ``host`` and run it there, retrying only what is safe to retry."""
        cfg = self.host(host)
        script = self.render(cfg.name, template, params, version=version)
        return self.run_script(cfg.name, script, check=check, on_progress=on_progress, timeout=timeout)

    def run_script(
        self,
        host: str,
        script: Script,
        *,
        check: bool = True,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = None,
    ) -> Result:
        cfg = self.host(host)
        placeholder = has_placeholder(script.params)
        if placeholder:
            raise TemplateError(f"{script.template}: {placeholder} is a placeholder for --render, not a value to run")

        def attempt() -> Result:
            transport = self.transport(cfg.name)
            with self._host_lock(cfg.name):
                token = self._waiting(cfg.name, script.template)
                try:
                    return transport.run(script, timeout=timeout, on_progress=on_progress)
                finally:
                    self._done_waiting(token)

        for obs in self.observers:
            obs.call_started(cfg.name, script)
        started = time.monotonic()
        try:
            result = call_with_retry(attempt, self.retry, idempotent=script.safe_to_resend,
                                     what=f"{cfg.name}: {script.template}")
        except BaseException as exc:
            if isinstance(exc, TransportError) and not script.read_only and exc.hint is None:
                # Say what is true: the answer was lost after the script went out, or it never ran.
                exc.hint = (f"{script.template} was sent and may have run on {cfg.name}: look at the host before "
                            "running it again" if exc.sent else f"{script.template} did not run on {cfg.name}")
            for obs in self.observers:
                obs.call_finished(cfg.name, script, None, exc)
            raise
        log.debug("%s: %s took %.3fs ok=%s", cfg.name, script.template, time.monotonic() - started, result.ok)
        for obs in self.observers:
            obs.call_finished(cfg.name, script, result, None)
        if check and not result.ok:
            raise RemoteScriptError(cfg.name, script.template, result.errors)
        if result.ok and script.output is not None:
            # The answer is held to the template's declared output: a mismatch is named here, never a KeyError later.
            contract.validate(script.template, script.output, result.data, host=cfg.name)
        return result

    # -- slow answers -------------------------------------------------------------------------------
    def _waiting(self, host: str, template: str) -> int:
        """Note a call in flight; a watchdog says once when one has waited :data:`SLOW_CALL` seconds."""
        with self._lock:
            self._next_token += 1
            token = self._next_token
            self._inflight[token] = (host, template, time.monotonic())
            if self._watchdog is None:
                self._watchdog = threading.Thread(target=self._watch_slow, name="hvauto-watchdog", daemon=True)
                self._watchdog.start()
        return token

    def _done_waiting(self, token: int) -> None:
        with self._lock:
            self._inflight.pop(token, None)

    def _watch_slow(self) -> None:
        told: set[int] = set()
        while True:
            time.sleep(1.0)
            now = time.monotonic()
            with self._lock:
                late = [(t, h, tpl, now - s) for t, (h, tpl, s) in self._inflight.items() if now - s >= SLOW_CALL]
                told &= set(self._inflight)
            for token, host, template, waited in late:
                if token not in told:
                    told.add(token)
                    timeout = self.host(host).read_timeout
                    wait_log.warning("%s: still waiting for the answer to %s (%.0f s so far; it gives up after "
                                     "read_timeout, %s s)", host, template, waited, f"{timeout:g}")

    # -- many hosts --------------------------------------------------------------------------------
    def fan_out(self, hosts: Iterable[str], fn: Callable[[str], T], *, max_workers: int | None = None) -> GroupResult:
        """Run ``fn(host)`` for every host concurrently; one host's failure does not stop the others."""
        names = [self.host(h).name for h in hosts]
        group = GroupResult({h: HostOutcome(h, ok=False) for h in names})
        if not names:
            return group

        def one(host: str) -> HostOutcome:
            try:
                return HostOutcome(host, ok=True, value=fn(host))
            except HvautoError as exc:
                return HostOutcome(host, ok=False, error=exc)

        workers = max(1, min(max_workers or self.max_workers, len(names)))
        if workers == 1:
            for h in names:
                group.outcomes[h] = one(h)
            return group
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hvauto") as pool:
            for h, outcome in zip(names, pool.map(one, names), strict=False):
                group.outcomes[h] = outcome
        return group


__all__ = ["MAX_WORKERS", "GroupResult", "Observer", "Progress", "Session"]
