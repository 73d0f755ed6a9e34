"""Server-to-client WebSocket frames (RFC 6455), built as bytes once.

A server's frames are not masked, so one event's frame is the same bytes for
every client: the hub builds it once and writes those bytes to each socket.
Frames are never compressed (permessage-deflate is declined at the handshake,
see ws.py), so nothing in them depends on the connection.
"""

from __future__ import annotations

import struct

OP_TEXT = 0x1
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
FIN = 0x80


def frame(opcode: int, payload: bytes) -> bytes:
    """One final (unfragmented) frame: header, then the payload as it is."""
    n = len(payload)
    if n < 126:
        return bytes((FIN | opcode, n)) + payload
    if n < 65_536:
        return struct.pack("!BBH", FIN | opcode, 126, n) + payload
    return struct.pack("!BBQ", FIN | opcode, 127, n) + payload


def text(message: str) -> bytes:
    return frame(OP_TEXT, message.encode())


def close(code: int, reason: str = "") -> bytes:
    # A control frame's payload is at most 125 bytes: the code, then the reason.
    return frame(OP_CLOSE, struct.pack("!H", code) + reason.encode()[:123])


def pong(payload: bytes) -> bytes:
    return frame(OP_PONG, payload[:125])


PING = frame(OP_PING, b"")
