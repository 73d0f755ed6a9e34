"""Test support: the session's platform (Redis, SQL, worker, web) from the launcher's pieces."""

from launcher.net import free_port, wait_until
from tests.support.platform import Platform, start_platform
from tests.support.services import WebService, WorkerService

__all__ = ["Platform", "WebService", "WorkerService", "free_port", "start_platform", "wait_until"]
