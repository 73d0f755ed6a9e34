"""Gunicorn settings for the web process: `gunicorn -c python:webapp.gunicorn_conf ...`.

gevent lets one process hold thousands of WebSockets (threaded servers take
two OS threads per socket). On SIGTERM the hub says "going away" (1001) to
every client first, so browsers reconnect to another process at once.
"""

from __future__ import annotations

import gc
import signal
from typing import Any

import gevent

worker_class = "gevent"
workers = 1
worker_connections = 10_000
graceful_timeout = 10
timeout = 30
keepalive = 5


def post_worker_init(worker: Any) -> None:
    app = worker.wsgi
    services = getattr(app, "extensions", {}).get("agentdeck")
    if services is None:
        return
    plain_exit = worker.handle_exit

    def going_away(sig: int, frame: Any) -> None:
        # A signal handler runs in gevent's loop, where nothing may block:
        # hand the closing to a greenlet of its own.
        gevent.spawn(services.hub.stop)
        services.recorder.stop()
        plain_exit(sig, frame)

    signal.signal(signal.SIGTERM, going_away)


def worker_exit(server: Any, worker: Any) -> None:
    # A Celery AsyncResult that was waited on or fulfilled sits in a reference cycle
    # (its `on_ready` promise holds it). Left to the interpreter's last collection, its
    # __del__ (which unsubscribes from the result) runs in a greenlet being finalized
    # and prints "Exception ignored in AsyncResult.__del__". Collect them now, while
    # the hub and Redis are still there.
    gc.collect()
