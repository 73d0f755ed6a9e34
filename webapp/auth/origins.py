"""Which Host headers and Origins the server answers (DNS rebinding, cross-site pages).

Pure functions of the request's headers and the settings.
"""

from __future__ import annotations

from urllib.parse import urlsplit

LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_BINDS = ("", "0.0.0.0", "::", "[::]")


def allowed_hosts(configured: tuple[str, ...], bind_host: str) -> tuple[str, ...]:
    """The configured names, else this machine's names plus the address served on."""
    if configured:
        return tuple(h.strip().lower() for h in configured)
    extra = () if bind_host in WILDCARD_BINDS else (bind_host.strip("[]").lower(),)
    return LOCAL_NAMES + extra


def hostname_of(host_header: str) -> str:
    """`example.com:8000` -> `example.com`; `[::1]:8000` -> `::1`."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def host_allowed(host_header: str | None, allowed: tuple[str, ...]) -> bool:
    if "*" in allowed:
        return True
    if not host_header:
        return False
    name = hostname_of(host_header)
    for pattern in allowed:
        if pattern.startswith("."):
            if name == pattern[1:] or name.endswith(pattern):
                return True
        elif name == pattern:
            return True
    return False


def origin_allowed(origin: str, host_header: str | None, extra: tuple[str, ...]) -> bool:
    """The page's own origin (its host and port are the Host it asked), or one listed."""
    if origin.rstrip("/") in extra:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc or not host_header:
        return False
    return parts.netloc.lower() == host_header.strip().lower()
