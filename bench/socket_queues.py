"""Where a stream's bytes wait: the kernel's TCP queues of the sockets of one port.

Sampled from /proc/net/tcp while a benchmark runs: bytes written by the server and not
yet taken by the peer (the server side's send queues) and bytes received by the
clients and not yet read by them (their receive queues). Large receive queues say the
clients read slower than the server writes; large send queues, a network or a peer
whose window is full. Linux only (elsewhere every figure is 0).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
ESTABLISHED = "01"


@dataclass(frozen=True)
class QueueBytes:
    server_send: int  # in the send queues of the sockets on the port
    client_receive: int  # in the receive queues of the sockets connected to it


def sample(port: int) -> QueueBytes:
    send = receive = 0
    for table in TABLES:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 5 or fields[3] != ESTABLISHED:
                continue
            local, remote = (
                int(fields[1].rsplit(":", 1)[1], 16),
                int(fields[2].rsplit(":", 1)[1], 16),
            )
            tx, rx = (int(n, 16) for n in fields[4].split(":"))
            if local == port:
                send += tx
            elif remote == port:
                receive += rx
    return QueueBytes(send, receive)


class QueueWatch:
    """The largest `sample` of `port` seen every `every` seconds until `stop`."""

    def __init__(self, port: int, every: float = 0.25) -> None:
        self.port = port
        self.every = every
        self.most = QueueBytes(0, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            now = sample(self.port)
            self.most = QueueBytes(
                max(self.most.server_send, now.server_send),
                max(self.most.client_receive, now.client_receive),
            )

    def stop(self) -> QueueBytes:
        self._stop.set()
        self._thread.join(5)
        return self.most
