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


def _mounts(service: dict) -> dict[str, str]:
    """{container path: source[:mode]} of a service's volumes (short syntax)."""
    mounts = {}
    for volume in service.get("volumes", []):
        # from the right: a source like ${DIR:-./x} holds colons of its own
        mode = volume.rsplit(":", 1)[1] if volume.endswith((":ro", ":rw")) else ""
        source, _, target = volume.removesuffix(f":{mode}" if mode else "").rpartition(":")
        mounts[target] = f"{source}:{mode}" if mode else source
    return mounts


@pytest.mark.parametrize("name", APP_SERVICES)
def test_only_the_worker_sees_registry_credentials(name):
    """Only the worker talks to registries; the web process, which faces users, never needs them."""
    config_dir = COMPOSE["x-app"]["environment"]["DOCKER_CONFIG"]
    mounts = _mounts(SERVICES[name])
    if name == "worker":
        assert mounts[config_dir].endswith(":ro"), "read-only"
    else:
        assert config_dir not in mounts, f"{name} mounts {config_dir}"
        assert not any("docker-config" in source or "DOCKER_CONFIG" in source for source in mounts.values())
    assert mounts["/data"] == "data", "every app service keeps the data volume"


def test_the_image_data_dir_is_its_users_alone():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "TAGLEDGER_DATA_DIR=/data" in dockerfile
    assert "chown tagledger /data && chmod 700 /data" in dockerfile


def test_https_and_the_proxy_are_settable_through_compose():
    environment = COMPOSE["x-app"]["environment"]
    assert environment["TAGLEDGER_HTTPS"] == "${TAGLEDGER_HTTPS:-false}"
    assert environment["TAGLEDGER_BEHIND_PROXY"] == "${TAGLEDGER_BEHIND_PROXY:-false}"
