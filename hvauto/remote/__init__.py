"""The remoting back-ends behind one seam (:mod:`hvauto.remote.base`).

Back-ends are imported only when a host needs one, so ``hvauto --help`` and the lab
never import pypsrp, pywinrm or requests.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from hvauto.credentials import Credentials
from hvauto.errors import ConfigError
from hvauto.inventory import HostConfig
from hvauto.script import Script

from .base import Progress, ProgressCallback, Result, Transport

#: transport name -> "module:Class"; each class takes (HostConfig, Credentials).
BACKENDS: dict[str, str] = {
    "psrp": "hvauto.remote.psrp:PSRPTransport",
    "winrm": "hvauto.remote.winrm:WinRMTransport",
    "lab": "hvauto.lab.transport:LabTransport",
}


#: transport name -> "module:function" taking a HostConfig and returning the stages of reaching it
#: (:class:`hvauto.remote.probe.Stage`), before any script runs (``hvauto doctor``).
PROBES: dict[str, str] = {
    "psrp": "hvauto.remote.probe:probe_network",
    "winrm": "hvauto.remote.probe:probe_network",
    "lab": "hvauto.lab.transport:probe",
}


def probe_host(cfg: HostConfig) -> list[Any]:
    """How far the host can be reached: name, port, TLS (each back-end probes in its own way)."""
    module_name, _, func = PROBES[cfg.transport].partition(":")
    stages: list[Any] = getattr(importlib.import_module(module_name), func)(cfg)
    return stages


def open_transport(cfg: HostConfig, creds: Credentials) -> Transport:
    try:
        target = BACKENDS[cfg.transport]
    except KeyError:
        raise ConfigError(f"unknown transport {cfg.transport!r}", key=f"hosts.{cfg.name}.transport") from None
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    transport: Transport = cls(cfg, creds)
    if cfg.transport != "lab" and cfg.tls and not cfg.verify:
        # Said on every use, not once at set-up: a test setting left in an inventory must not go unnoticed.
        sys.stderr.write(f"hvauto: warning: {cfg.name}: TLS certificate verification is off (verify = false): "
                         "whoever is on the path can read and change what is sent, credentials included; set "
                         "ca_path to trust a private CA instead\n")
    return transport


__all__ = ["BACKENDS", "PROBES", "probe_host", "Progress", "ProgressCallback", "Result", "Script", "Transport", "open_transport"]
