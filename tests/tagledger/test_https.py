"""HTTPS takes one setting, trusting a proxy's headers another; each is read from the environment.

Settings are read once per process, so each case starts Django in a subprocess with its variables.
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import RequestFactory, override_settings

from tagledger.security import client_address

ROOT = Path(__file__).resolve().parents[2]
YEAR = 365 * 24 * 3600

# Settings, then what a few requests get: plain HTTP, HTTPS as a proxy reports it, and the healthcheck.
PROBE = """
import json, django
django.setup()
from django.conf import settings as s
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
plain, proxied = Client(), Client(HTTP_X_FORWARDED_PROTO="https")
home, secure_home, health = plain.get("/"), proxied.get("/"), plain.get("/healthz")
print(json.dumps({
    "cookies_secure": [s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE],
    "hsts": [s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD],
    "redirect": s.SECURE_SSL_REDIRECT,
    "proxy_header": getattr(s, "SECURE_PROXY_SSL_HEADER", None),
    "plain": [home.status_code, home.get("Location"), home.get("Strict-Transport-Security")],
    "proxied": [secure_home.status_code, secure_home.get("Strict-Transport-Security")],
    "health": health.status_code,
}))
"""


def environment(tmp_path, **variables) -> dict:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TAGLEDGER_")}
    environ.pop("DATABASE_URL", None)  # the healthcheck's SELECT 1 on a throwaway SQLite file
    environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # the browser tests' session sets it
    return {
        **environ,
        "DJANGO_SETTINGS_MODULE": "tagledger.settings",
        "TAGLEDGER_DATA_DIR": str(tmp_path),
        "TAGLEDGER_SECRET_KEY": secrets.token_urlsafe(50),
        **variables,
    }


def probe(tmp_path, **variables) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=environment(tmp_path, **variables),
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_plain_http_by_default(tmp_path):
    found = probe(tmp_path)

    assert found["cookies_secure"] == [False, False]
    assert found["hsts"] == [0, False, False]
    assert (found["redirect"], found["proxy_header"]) == (False, None)
    assert found["plain"][2] is None and found["proxied"][1] is None


def test_https_alone_means_secure_cookies_hsts_and_a_redirect(tmp_path):
    found = probe(tmp_path, TAGLEDGER_HTTPS="true")

    assert found["cookies_secure"] == [True, True]
    assert found["hsts"] == [YEAR, False, False]
    assert found["plain"][:2] == [301, "https://testserver/"]
    assert found["proxy_header"] is None, "X-Forwarded-Proto is a client's to forge until a proxy is declared"
    assert found["proxied"][0] == 301
    assert found["health"] == 200, "compose's healthcheck asks over plain HTTP"


def test_the_older_secure_cookies_setting_still_means_secure_cookies_only(tmp_path):
    found = probe(tmp_path, TAGLEDGER_SECURE_COOKIES="true")

    assert found["cookies_secure"] == [True, True]
    assert (found["hsts"][0], found["redirect"]) == (0, False)


def test_behind_a_proxy_its_forwarded_proto_counts(tmp_path):
    found = probe(tmp_path, TAGLEDGER_HTTPS="true", TAGLEDGER_BEHIND_PROXY="true")

    assert found["proxy_header"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert found["plain"][0] == 301
    assert found["proxied"] == [302, f"max-age={YEAR}"]  # to the login page, over HTTPS, with HSTS


def test_check_deploy_is_clean_when_served_over_https(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
        env=environment(tmp_path, TAGLEDGER_HTTPS="true", TAGLEDGER_BEHIND_PROXY="true"),
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize(
    ("variables", "says"),
    [
        ({"TAGLEDGER_HTTPS": "ture"}, "TAGLEDGER_HTTPS='ture' is not a boolean"),
        ({"TAGLEDGER_BEHIND_PROXY": "nginx"}, "TAGLEDGER_BEHIND_PROXY='nginx' is not a boolean"),
        ({"TAGLEDGER_LOGIN_FAILURE_LIMIT": "ten"}, "TAGLEDGER_LOGIN_FAILURE_LIMIT='ten' is not an integer"),
        ({"TAGLEDGER_LOGIN_FAILURE_LIMIT": "0"}, "TAGLEDGER_LOGIN_FAILURE_LIMIT=0 is below the minimum of 1"),
        ({"TAGLEDGER_LOGIN_COOLOFF_MINUTES": "15m"}, "TAGLEDGER_LOGIN_COOLOFF_MINUTES='15m' is not an"),
        ({"TAGLEDGER_SECURE_COOKIES": "sure"}, "TAGLEDGER_SECURE_COOKIES='sure' is not a boolean"),
    ],
)
def test_a_bad_value_stops_start_up(tmp_path, variables, says):
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=environment(tmp_path, **variables),
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode != 0
    assert says in result.stderr


def test_login_throttling_reads_its_limits_from_the_environment(tmp_path):
    script = (
        "import django, json; django.setup(); from django.conf import settings as s;"
        "print(json.dumps([s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME.total_seconds()]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True,
        env=environment(tmp_path, TAGLEDGER_LOGIN_FAILURE_LIMIT="4", TAGLEDGER_LOGIN_COOLOFF_MINUTES="60"),
    )  # fmt: skip
    assert json.loads(result.stdout) == [4, 3600]


# --- the address a sign-in counts against ------------------------------------------------------


@pytest.mark.parametrize(
    ("remote", "forwarded", "direct", "proxied"),
    [
        ("203.0.113.7", None, "203.0.113.7", "203.0.113.7"),
        # the proxy appends the peer it saw; anything before that came from the client
        ("10.0.0.2", "198.51.100.20", "10.0.0.2", "198.51.100.20"),
        ("10.0.0.2", "1.2.3.4, 198.51.100.20", "10.0.0.2", "198.51.100.20"),
        ("10.0.0.2", "198.51.100.20 , ", "10.0.0.2", "10.0.0.2"),  # a last hop that is no address
        ("10.0.0.2", "<script>", "10.0.0.2", "10.0.0.2"),
        ("10.0.0.2", "198.51.100.20:4711", "10.0.0.2", "10.0.0.2"),
        ("10.0.0.2", "x" * 10_000, "10.0.0.2", "10.0.0.2"),
        # IPv6 counts by /64, which one client holds whole; IPv4 in IPv6 is IPv4
        ("2001:db8:1:2:aaaa::1", None, "2001:db8:1:2::", "2001:db8:1:2::"),
        ("10.0.0.2", "2001:db8:1:2:bbbb::9", "10.0.0.2", "2001:db8:1:2::"),
        ("::ffff:203.0.113.7", None, "203.0.113.7", "203.0.113.7"),
        ("", None, None, None),
        ("unix:/run/x.sock", "198.51.100.20", None, "198.51.100.20"),
    ],
)
def test_the_client_address_trusts_forwarded_for_only_behind_a_declared_proxy(
    remote, forwarded, direct, proxied
):
    meta = {"REMOTE_ADDR": remote} | ({"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {})
    request = RequestFactory().get("/", **meta)
    request.META["REMOTE_ADDR"] = remote
    for behind_proxy, expected in ((False, direct), (True, proxied)):
        with override_settings(TAGLEDGER_BEHIND_PROXY=behind_proxy):
            assert client_address(request) == expected, behind_proxy
