"""Celery configuration for Agentdeck's workers and for the web app's client."""

import os

from workers.redis_urls import celery_sentinel_options, is_redis, is_sentinel

_redis = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
# The Celery broker: Redis (the default, REDIS_URL), Redis through Sentinel, or
# RabbitMQ (amqp://). Results and Agentdeck's events stay on Redis either way.
_broker = os.environ.get("AGENTDECK_BROKER_URL") or _redis

broker_url, _broker_options = celery_sentinel_options(_broker)
result_backend, _result_options = celery_sentinel_options(_redis)
if _result_options:
    result_backend_transport_options = _result_options
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
# A job is acknowledged only once it has run, and goes back to the queue if
# its worker dies, so a killed worker never loses a job.
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
broker_connection_retry_on_startup = True
broker_transport_options = {"visibility_timeout": 3600, **_broker_options}
# A process waits at most this long for a connection of its broker pool
# (broker_pool_limit, 10): a starved pool then fails fast (the web answers 503)
# instead of hanging every publish after it. See webapp/broker_pool.py.
broker_pool_acquire_timeout = 5.0
if is_redis(_broker):
    # kombu's Redis transport, minus the restore of running tasks when the broker
    # connection is lost (Redis restarted): see workers/redis_transport.py.
    # RabbitMQ needs no such thing: it requeues a lost consumer's messages itself.
    broker_transport = (
        "workers.redis_transport:SentinelTransport"
        if is_sentinel(_broker)
        else "workers.redis_transport:Transport"
    )
result_expires = 7 * 24 * 3600
# Agentdeck has its own event pipe; Celery's event stream stays off.
worker_send_task_events = False
task_send_sent_event = False
imports = ["workers.tasks"]
timezone = "UTC"
