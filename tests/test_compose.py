"""docker-compose.yml and the Dockerfile point at things that exist (no Docker engine runs here)."""

import importlib
import re
import shlex
from pathlib import Path

import pytest
import yaml
from celery import Celery
from django.core.management import get_commands
from django.urls import resolve

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
APP_SERVICES = [name for name, service in SERVICES.items() if service.get("build") == "."]
DOCUMENTED = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))


def command_of(service: dict) -> list[str]:
    command = service["command"]
    if command[:2] == ["sh", "-c"]:
        return shlex.split(command[2])
    return command


def test_the_stack_has_every_part():
    assert {"db", "redis", "web", "worker", "beat"} <= set(SERVICES)
    assert {"web", "worker", "beat"} <= set(APP_SERVICES)
    assert len({SERVICES[name]["image"] for name in APP_SERVICES}) == 1, "one image for all app services"


@pytest.mark.parametrize("name", ["db", "redis", "web"])
def test_services_others_wait_for_have_healthchecks(name):
    assert SERVICES[name]["healthcheck"]["test"]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_wait_for_healthy_db_and_redis(name):
    depends = SERVICES[name]["depends_on"]
    assert depends["db"]["condition"] == "service_healthy"
    assert depends["redis"]["condition"] == "service_healthy"
    for dependency, rule in depends.items():
        assert dependency in SERVICES
        if rule["condition"] == "service_healthy":
            assert "healthcheck" in SERVICES[dependency]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_commands_refer_to_real_entry_points(name):
    words = command_of(SERVICES[name])
    if words[0] == "celery":
        app_module = words[words.index("-A") + 1]
        assert isinstance(importlib.import_module(app_module).celery_app, Celery)
        assert words[words.index("-A") + 2] in {"worker", "beat"}
    elif words[0] == "gunicorn":
        app = words[3] if words[1] == "-c" else words[1]  # `-c python:tagledger.gunicorn` first
        module, attribute = app.split(":")
        assert callable(getattr(importlib.import_module(module), attribute))
    else:
        assert words[:2] == ["python", "manage.py"], words
        for command in " ".join(words).split("&&"):
            assert command.split()[2] in get_commands(), command


def test_app_environment_is_documented_and_parses():
    environment = COMPOSE["x-app"]["environment"]
    assert set(environment) <= DOCUMENTED
    assert environment["DATABASE_URL"].startswith("postgres://")
    assert environment["REDIS_URL"].startswith("redis://")


def test_dockerfile_sets_only_documented_variables_and_copies_the_packages():
    dockerfile = (ROOT / "Dockerfile").read_text()
    env_line = re.search(r"^ENV (.+?)(?<!\\)$", dockerfile, re.M | re.S).group(1)
    assert {pair.split("=")[0] for pair in env_line.replace("\\\n", " ").split()} - {
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONUNBUFFERED",
    } <= DOCUMENTED
    for package in ("tagledger", "catalog", "history", "templates", "static"):
        assert (ROOT / package).is_dir()
        assert f"COPY {package} {package}" in dockerfile


def test_web_healthcheck_url_exists():
    assert "/healthz" in " ".join(SERVICES["web"]["healthcheck"]["test"])
    assert resolve("/healthz").url_name == "healthz"


def test_web_workers_freeze_the_loaded_app(monkeypatch):
    """gunicorn loads `tagledger.gunicorn` in compose and the image, whose hook freezes the app."""
    dockerfile_cmd = re.search(r"^CMD (\[.+\])$", (ROOT / "Dockerfile").read_text(), re.M).group(1)
    frozen = []
    for words in (command_of(SERVICES["web"]), yaml.safe_load(dockerfile_cmd)):
        assert words[0] == "gunicorn"
        config = words[words.index("-c") + 1]
        assert config.startswith("python:")
        module = importlib.import_module(config.removeprefix("python:"))
        monkeypatch.setattr(module.gc, "freeze", lambda: frozen.append(True))
        module.post_worker_init(worker=None)
    assert frozen == [True, True]
