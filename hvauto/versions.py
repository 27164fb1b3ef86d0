"""Windows Server versions hvauto targets, and the PowerShell each one ships."""

from __future__ import annotations

from .errors import UsageError

#: Oldest first. The keys match ``../shared/reference/cmdlets.json``.
OS_VERSIONS: tuple[str, ...] = ("2012", "2012r2", "2016", "2019", "2022", "2025")
OLDEST = OS_VERSIONS[0]

#: Windows PowerShell that ships in the box (WMF table on Microsoft Learn).
PS_VERSION: dict[str, str] = {
    "2012": "3.0",
    "2012r2": "4.0",
    "2016": "5.1",
    "2019": "5.1",
    "2022": "5.1",
    "2025": "5.1",
}

#: Kernel version (Win32_OperatingSystem.Version) to Windows Server release.
_BUILDS: tuple[tuple[str, str], ...] = (
    ("6.2.", "2012"),
    ("6.3.", "2012r2"),
    ("10.0.14393", "2016"),
    ("10.0.17763", "2019"),
    ("10.0.20348", "2022"),
    ("10.0.26100", "2025"),
)

LABELS: dict[str, str] = {
    "2012": "Windows Server 2012",
    "2012r2": "Windows Server 2012 R2",
    "2016": "Windows Server 2016",
    "2019": "Windows Server 2019",
    "2022": "Windows Server 2022",
    "2025": "Windows Server 2025",
}


def normalize(value: object) -> str:
    """Accept '2012 R2', '2012R2', 2016 ... and return the canonical key, or raise UsageError."""
    text = str(value).strip().lower().replace(" ", "").replace("_", "")
    text = text.removeprefix("windowsserver").removeprefix("ws")
    if text in OS_VERSIONS:
        return text
    raise UsageError(f"unknown Windows Server version {value!r}; expected one of {', '.join(OS_VERSIONS)}")


def from_kernel_version(version: str) -> str | None:
    """Map '10.0.20348' (or a longer build string) to '2022'; None when not a server build we know."""
    for prefix, key in _BUILDS:
        if version.startswith(prefix):
            return key
    return None


def index(version: str) -> int:
    return OS_VERSIONS.index(version)


def at_least(version: str, minimum: str) -> bool:
    return index(version) >= index(normalize(minimum))


def label(version: str) -> str:
    return LABELS.get(version, version)
