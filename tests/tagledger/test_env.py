"""Settings come from the environment and a bad value stops start-up with a clear message."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tagledger.env import ConfigurationError, env_bool, env_choice, env_int, env_list, env_str

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("yes", True), ("on", True),
     ("false", False), ("0", False), ("no", False), ("Off", False), ("", True), (None, True)],
)  # fmt: skip
def test_env_bool_reads_common_spellings(raw, expected):
    environ = {} if raw is None else {"FLAG": raw}
    assert env_bool("FLAG", True, environ=environ) is expected


@pytest.mark.parametrize("raw", ["ture", "2", "y es", "<script>"])
def test_env_bool_refuses_typos(raw):
    with pytest.raises(ConfigurationError, match=r"FLAG=.* is not a boolean"):
        env_bool("FLAG", False, environ={"FLAG": raw})


def test_env_int_parses_and_checks_minimum():
    assert env_int("N", 5, environ={}) == 5
    assert env_int("N", 5, environ={"N": " 12 "}) == 12
    with pytest.raises(ConfigurationError, match="not an integer"):
        env_int("N", 5, environ={"N": "12s"})
    with pytest.raises(ConfigurationError, match="below the minimum"):
        env_int("N", 5, minimum=1, environ={"N": "0"})


def test_env_list_and_str_and_choice():
    assert env_list("L", ["a"], environ={}) == ["a"]
    assert env_list("L", [], environ={"L": " a, b ,,c "}) == ["a", "b", "c"]
    assert env_str("S", "d", environ={"S": "  "}) == "d"
    assert env_choice("C", "info", {"info", "debug"}, environ={"C": "DEBUG"}) == "debug"
    with pytest.raises(ConfigurationError, match="must be one of debug, info"):
        env_choice("C", "info", {"info", "debug"}, environ={"C": "loud"})


def run_check(tmp_path, **variables):
    environ = {**os.environ, "TAGLEDGER_DATA_DIR": str(tmp_path), **variables}
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=environ, capture_output=True, text=True
    )


def test_a_typo_in_a_setting_stops_start_up(tmp_path):
    result = run_check(tmp_path, TAGLEDGER_PUBLIC="ture")
    assert result.returncode != 0
    assert "TAGLEDGER_PUBLIC='ture' is not a boolean" in result.stderr


def test_an_unsupported_database_url_stops_start_up(tmp_path):
    result = run_check(tmp_path, DATABASE_URL="mysql://root@127.0.0.1/x")
    assert result.returncode != 0
    assert "DATABASE_URL must be a postgres:// or sqlite:// URL" in result.stderr


def test_embedded_defaults_need_no_service(tmp_path):
    environ = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    script = (
        "import django, json; django.setup(); from django.conf import settings as s;"
        "print(json.dumps([s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL,"
        " s.DATABASES['default']['OPTIONS']['init_command'], s.CACHES['default']['BACKEND']]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True,
        env={**environ, "TAGLEDGER_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "tagledger.settings"},
    )  # fmt: skip
    engine, broker, init, cache = json.loads(result.stdout)
    assert engine == "django.db.backends.sqlite3"
    assert broker == "filesystem://"
    assert "journal_mode=WAL" in init
    assert cache.endswith("DatabaseCache")
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0, "secret key readable by others"


def test_every_variable_the_settings_read_is_documented():
    read = set(re.findall(r'env_\w+\(\s*"([A-Z_]+)"', (ROOT / "tagledger" / "settings.py").read_text()))
    example = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    readme = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", (ROOT / "README.md").read_text(), re.M))
    assert read <= example, f"missing from .env.example: {read - example}"
    assert read <= readme, f"missing from README's table: {read - readme}"
