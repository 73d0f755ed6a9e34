"""kombu's Redis transport, made to survive a lost broker connection (Redis restarted).

When a worker loses its broker connection, Celery collects the connection and
closes it, and kombu's Redis channel, on close, *restores* every message the
worker holds unacknowledged to its queue. With `acks_late` those are the tasks
still running: each would run a second time, next to the first. On the path
Celery takes after a connection error the transport has also dropped its
client by then, so the restore fails instead, with an AttributeError Celery
takes as unrecoverable: the worker finishes what runs and exits.

This transport lets a lost connection's channels go without restoring: their
messages stay in the broker's `unacked` hash, the worker goes on running
those tasks and acks each one as it ends, over a new connection to the
restarted Redis. Whatever the worker still holds when it exits is restored
then, as before (kombu's exit handler); a worker that dies is the janitor's
(`webapp/lost_workers.py`) or, failing that, the visibility timeout's.
Selected in `celeryconfig.py` with `broker_transport`, for Redis brokers only
(`SentinelTransport` for a broker reached through Redis Sentinel). It also keeps
one Redis client per channel where kombu made one per publish and per ack.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    lost = False  # set when the connection was lost: close without restoring
    _sync_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        """kombu builds a new client (~150 µs of Python: its response callbacks) for every
        publish, publish batch and ack; a client is safe to share, so one per channel (and
        per pool: a lost connection's pool is replaced) does."""
        if asynchronous:
            return super()._create_client(asynchronous=True)
        pool = self.pool
        client = self._sync_client
        if client is None or client.connection_pool is not pool:
            client = self._sync_client = super()._create_client()
        return client

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._params: dict[bool, dict[str, Any]] = {}
        super().__init__(*args, **kwargs)
        for asynchronous in (False, True):  # known now: a loss clears what they come from
            self._connparams(asynchronous)

    def _connparams(self, asynchronous: bool = False) -> Any:
        transport = self.connection
        if transport is None or transport.client is None or isinstance(transport, _Collected):
            # Collected after a loss: acks of tasks that end later still need a pool.
            return dict(self._params[asynchronous])
        params = super()._connparams(asynchronous=asynchronous)
        self._params[asynchronous] = dict(params)
        return params

    def close(self) -> None:
        if not self.lost:
            super().close()
            return
        qos, self._qos = self._qos, None  # the closing skips the restore
        try:
            super().close()
        finally:
            self._qos = qos  # acks of the running tasks go through it


class Transport(kombu_redis.Transport):
    Channel = Channel

    def _collect(self, connection: Any) -> None:
        """The connection is lost (Celery collects it): close channels, restore nothing."""
        for channel in (*self._avail_channels, *self.channels):
            channel.lost = True
        try:
            self.close_connection(connection)
        except (*self.connection_errors, *self.channel_errors, OSError):
            pass  # the broker is away: there is nothing to say to it


class _Collected:
    """What a Sentinel channel knows of its transport once a loss collected it."""

    def __init__(self, alt: list[str], default_port: int) -> None:
        self.client = SimpleNamespace(alt=alt)
        self.default_port = default_port


class SentinelChannel(Channel, kombu_redis.SentinelChannel):
    """The same, on kombu's Sentinel channel (finds the current primary on connect)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        transport = self.connection
        self._collected = _Collected(list(transport.client.alt), transport.default_port)

    def _sentinel_managed_pool(self, asynchronous: bool = False) -> Any:
        """A task that ends after a loss collected the transport is acked through a new
        pool: it asks the Sentinels named in the broker URL, which the transport knew."""
        transport = self.connection
        if transport is not None and transport.client is not None:
            return super()._sentinel_managed_pool(asynchronous)
        self.connection = self._collected
        try:
            return super()._sentinel_managed_pool(asynchronous)
        finally:
            self.connection = transport


class SentinelTransport(Transport):
    Channel = SentinelChannel
    default_port = kombu_redis.SentinelTransport.default_port  # type: ignore[assignment]
