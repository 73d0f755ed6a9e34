"""Turn Agentdeck's monitoring on for any Celery app: `import workers.monitoring`.

Importing this module connects every receiver: task events (`signals`), the
per-task counters (`worker_stats`) and worker presence (`heartbeat`). It works the
same as a Celery setting, `imports = ["workers.monitoring"]`, for the worker
side; producers (the processes that send tasks) need the import so that
`job.queued` is recorded too. See docs/monitoring.md.
"""

from workers import heartbeat, signals, worker_stats  # noqa: F401

__all__ = ["heartbeat", "signals", "worker_stats"]
