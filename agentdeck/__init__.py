"""Agentdeck from Python and from a terminal.

`agentdeck.client` is a client of a running Agentdeck server: it speaks the
REST API and the `/ws` WebSocket (docs/api.md) and nothing else, so it works
from any machine that can reach the server. `agentdeck.cli` is the
`agentdeck` command built on it (docs/cli.md).
"""

from agentdeck.client import (
    DEFAULT_URL,
    FINAL_STATES,
    AgentdeckError,
    ApiError,
    Client,
    ConnectionFailed,
    EventStream,
    Forbidden,
    NotFound,
    Unauthorized,
    WaitTimeout,
)

__all__ = [
    "DEFAULT_URL",
    "FINAL_STATES",
    "AgentdeckError",
    "ApiError",
    "Client",
    "ConnectionFailed",
    "EventStream",
    "Forbidden",
    "NotFound",
    "Unauthorized",
    "WaitTimeout",
]
