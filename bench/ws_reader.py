"""A minimal asyncio WebSocket client for the benchmarks' readers (RFC 6455).

The streaming baseline reads bare Redis with a minimal RESP reader; this is its
counterpart for Agentdeck's sockets, so both sides pay only what any reader of that
protocol pays: read what the socket holds, cut it into frames, answer pings. It
offers permessage-deflate as browsers do (the server declines it) and reads
uncompressed frames only.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import struct
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

TEXT, BINARY, CLOSE, PING, PONG, CONTINUATION = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0
READ_SIZE = 1 << 16


def masked(opcode: int, payload: bytes) -> bytes:
    """A client's frame: final, masked (RFC 6455 5.3)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    key = os.urandom(4)
    body = int.from_bytes(payload, "big") ^ int.from_bytes((key * (n // 4 + 1))[:n], "big")
    return head + key + body.to_bytes(n, "big")


class Frames:
    """Cuts the server's (unmasked) frames off a byte stream; joins fragments."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self._fragments: list[bytes] = []
        self._first_opcode = TEXT

    def feed(self, chunk: bytes) -> list[tuple[int, bytes]]:
        self.buf += chunk
        buf, pos, out = self.buf, 0, []
        while len(buf) - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n, at = b1 & 0x7F, pos + 2
            if n == 126:
                if len(buf) - at < 2:
                    break
                n, at = struct.unpack_from("!H", buf, at)[0], at + 2
            elif n == 127:
                if len(buf) - at < 8:
                    break
                n, at = struct.unpack_from("!Q", buf, at)[0], at + 8
            if b1 & 0x80:
                raise ConnectionError("the server masked a frame")
            if len(buf) - at < n:
                break
            payload, pos = bytes(buf[at : at + n]), at + n
            opcode, final = b0 & 0x0F, bool(b0 & 0x80)
            if opcode >= CLOSE:  # control frames come whole, between fragments too
                out.append((opcode, payload))
            elif not final:
                if opcode != CONTINUATION:
                    self._first_opcode = opcode
                self._fragments.append(payload)
            elif opcode == CONTINUATION:
                out.append((self._first_opcode, b"".join([*self._fragments, payload])))
                self._fragments = []
            else:
                out.append((opcode, payload))
        del buf[:pos]
        return out


class RawWebSocket:
    """One connection: `messages()` yields (the wall-clock time it was read, its bytes)
    of each text message."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.close_code: int | None = None
        self.close_reason = ""

    @classmethod
    async def connect(cls, url: str, headers: dict[str, str], timeout: float) -> RawWebSocket:
        u = urlsplit(url)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(u.hostname, u.port or 80, limit=READ_SIZE), timeout
        )
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {u.path or '/'} HTTP/1.1",
            f"Host: {u.netloc}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
            *(f"{k}: {v}" for k, v in headers.items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        status = response.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            writer.close()
            raise ConnectionError(f"handshake refused: {status.decode(errors='replace')}")
        if b"permessage-deflate" in response.lower():
            writer.close()
            raise ConnectionError("the server chose permessage-deflate: not read here")
        return cls(reader, writer)

    async def send_text(self, text: str) -> None:
        self.writer.write(masked(TEXT, text.encode()))
        await self.writer.drain()

    async def messages(self) -> AsyncIterator[tuple[float, bytes]]:
        frames = Frames()
        while True:
            chunk = await self.reader.read(READ_SIZE)
            if not chunk:
                return
            now = time.time()
            for opcode, payload in frames.feed(chunk):
                if opcode == TEXT:
                    yield now, payload
                elif opcode == PING:
                    self.writer.write(masked(PONG, payload))
                elif opcode == CLOSE:
                    if len(payload) >= 2:
                        self.close_code = struct.unpack_from("!H", payload)[0]
                        self.close_reason = payload[2:].decode(errors="replace")
                    return

    async def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.write(masked(CLOSE, struct.pack("!H", 1000)))
            self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()
