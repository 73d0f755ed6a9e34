"""docker-compose.yml as deployed: one published port (the proxy), scalable web and
workers, a health check on every long-running service, the admin token on web only."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from launcher.commands import REPO_ROOT


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    return dict(compose["services"])


def test_only_the_proxy_publishes_a_port_and_only_on_loopback(services: dict[str, Any]) -> None:
    published = {name: s["ports"] for name, s in services.items() if "ports" in s}
    assert published == {"proxy": ["127.0.0.1:8000:8080"]}


def test_web_and_worker_can_be_scaled(services: dict[str, Any]) -> None:
    # a fixed host port or container name would make a second replica fail to start
    for name in ("web", "worker"):
        assert "ports" not in services[name] and "container_name" not in services[name]


def test_the_proxy_runs_the_repo_nginx_config_in_front_of_healthy_web(
    services: dict[str, Any],
) -> None:
    proxy = services["proxy"]
    assert "./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro" in proxy["volumes"]
    assert proxy["depends_on"]["web"]["condition"] == "service_healthy"
    assert services["web"]["environment"]["AGENTDECK_PROXY_HOPS"] == "1"


def test_every_long_running_service_has_a_health_check(services: dict[str, Any]) -> None:
    one_shot = {name for name, s in services.items() if s.get("restart") == "no"}
    assert one_shot == {"migrate"}
    missing = [
        name for name in services if name not in one_shot and "healthcheck" not in services[name]
    ]
    assert missing == []


def test_the_admin_token_goes_to_web_only(services: dict[str, Any]) -> None:
    holders = [
        n for n, s in services.items() if "AGENTDECK_ADMIN_TOKEN" in str(s.get("environment"))
    ]
    assert holders == ["web"]
