"""Reachability, in the order a person would debug it: name, port, TLS. Standard library only.

``hvauto doctor`` asks each host's back-end to probe it before the first script runs. A network
back-end (psrp, winrm) resolves the name, opens TCP to the WinRM port and, over HTTPS, checks
the certificate (chain, name, expiry). Each stage says what it found and, when it fails, what
to check; the first failure ends the probe (what comes after it cannot be known).
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from dataclasses import dataclass

from hvauto.inventory import HostConfig

#: A certificate that expires within this many days is a warning.
EXPIRY_WARNING_DAYS = 30
CONNECT_TIMEOUT = 5.0


@dataclass
class Stage:
    """One stage of reaching a host: ``ok``, or failed with what to check; ``warning``: ok but worth fixing."""

    name: str
    ok: bool
    detail: str = ""
    fix: str = ""
    warning: bool = False


def probe_network(cfg: HostConfig) -> list[Stage]:
    """Name resolution, TCP to the WinRM port, and TLS (certificate chain, name, expiry) when HTTPS."""
    address, port = cfg.address or cfg.name, cfg.effective_port
    stages: list[Stage] = []
    try:
        infos = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        stages.append(Stage("name", False, f"{address} does not resolve ({exc})",
                            f"check DNS for {address}, or set hosts.{cfg.name}.address in the inventory"))
        return stages
    ips = sorted({str(i[4][0]) for i in infos})
    stages.append(Stage("name", True, f"{address} is {', '.join(ips)}"))
    try:
        sock = socket.create_connection((address, port), timeout=CONNECT_TIMEOUT)
    except OSError as exc:
        stages.append(Stage("tcp", False, f"no connection to {address}:{port} ({exc})",
                            f"check that WinRM listens on {port} ({'HTTPS' if cfg.tls else 'HTTP'}: winrm "
                            f"enumerate winrm/config/listener) and that the firewall lets {port} through"))
        return stages
    stages.append(Stage("tcp", True, f"{address}:{port} answers"))
    if not cfg.tls:
        sock.close()
        stages.append(Stage("tls", True, "HTTP: no TLS (messages are encrypted by the authentication)",
                            warning=not cfg.allow_unencrypted and cfg.auth == "basic"))
        return stages
    stages.append(_tls(cfg, sock, address))
    return stages


def _tls(cfg: HostConfig, sock: socket.socket, address: str) -> Stage:
    context = ssl.create_default_context(cafile=cfg.ca_path) if cfg.verify else ssl._create_unverified_context()  # noqa: S323
    try:
        with context.wrap_socket(sock, server_hostname=address) as tls:
            cert = tls.getpeercert()
    except ssl.SSLCertVerificationError as exc:
        reason = str(exc.verify_message or exc)
        if "hostname" in reason.lower() or "ip address mismatch" in reason.lower():
            return Stage("tls", False, f"the certificate of {address} is not for that name ({reason})",
                         f"connect by a name the certificate carries (hosts.{cfg.name}.address), or issue the "
                         "WinRM certificate for this name")
        return Stage("tls", False, f"the certificate of {address} is not trusted ({reason})",
                     f"add the issuing CA to hosts.{cfg.name}.ca_path (or the system store)")
    except (ssl.SSLError, OSError) as exc:
        return Stage("tls", False, f"no TLS handshake with {address} ({exc})",
                     "check the WinRM HTTPS listener's certificate binding")
    finally:
        sock.close()
    if not cfg.verify:
        return Stage("tls", True, "TLS without certificate verification (verify = false)",
                     "turn verification on: set hosts.*.ca_path to the issuing CA", warning=True)
    return expiry_stage(str((cert or {}).get("notAfter") or ""), address)


def expiry_stage(not_after: str, address: str, now: dt.datetime | None = None) -> Stage:
    """A verified certificate; a warning when it expires within :data:`EXPIRY_WARNING_DAYS`."""
    if not not_after:
        return Stage("tls", True, f"certificate of {address} verified")
    expires = dt.datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), tz=dt.timezone.utc)
    days = ((expires - (now or dt.datetime.now(dt.timezone.utc))).total_seconds()) / 86400
    if days < EXPIRY_WARNING_DAYS:
        return Stage("tls", True, f"certificate of {address} expires in {max(days, 0):.0f} day(s) "
                     f"({expires:%Y-%m-%d})", "renew the WinRM certificate before it expires", warning=True)
    return Stage("tls", True, f"certificate of {address} verified, valid until {expires:%Y-%m-%d}")


__all__ = ["EXPIRY_WARNING_DAYS", "Stage", "expiry_stage", "probe_network"]
