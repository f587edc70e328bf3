"""The data dir and the SQLite files in it are its user's alone: they hold password hashes and sessions."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tagledger import settings as tagledger_settings
from tagledger.env import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]

# Start Django on the embedded defaults and write through SQLite; its -wal and -shm files exist while
# the connection is open (the last one to close removes them), so their modes are read then.
WRITE = """
import django, json, stat
django.setup()
from django.conf import settings
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE IF NOT EXISTS probe (value TEXT)")
    cursor.execute("INSERT INTO probe VALUES ('x')")
    files = sorted(settings.DATA_DIR.glob("tagledger.sqlite3*"))
    print(json.dumps({path.name: stat.S_IMODE(path.stat().st_mode) for path in files}))
"""


def start(data_dir: Path) -> dict[str, int]:
    """{name: mode} of the SQLite files while the database is open."""
    unset = {"DATABASE_URL", "REDIS_URL"}
    environ = {k: v for k, v in os.environ.items() if k not in unset and not k.startswith("TAGLEDGER_")}
    result = subprocess.run(
        [sys.executable, "-c", WRITE], cwd=ROOT, check=True, capture_output=True, text=True,
        env={**environ, "DJANGO_SETTINGS_MODULE": "tagledger.settings", "TAGLEDGER_DATA_DIR": str(data_dir)},
    )  # fmt: skip
    return json.loads(result.stdout.splitlines()[-1])


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_data_dir_is_0700_and_the_database_files_0600(tmp_path):
    data_dir = tmp_path / "new" / "data"

    files = start(data_dir)

    assert mode(data_dir) == 0o700
    names = ("tagledger.sqlite3", "tagledger.sqlite3-wal", "tagledger.sqlite3-shm")
    assert files == dict.fromkeys(names, 0o600)
    assert mode(data_dir / "secret_key") == 0o600


def test_an_older_install_open_to_others_is_closed_at_start_up(tmp_path):
    data_dir = tmp_path / "data"
    start(data_dir)
    data_dir.chmod(0o755)
    # as an older install left them, -wal and -shm included (a process that did not close cleanly)
    for name in ("tagledger.sqlite3", "tagledger.sqlite3-wal", "tagledger.sqlite3-shm"):
        (data_dir / name).touch()
        (data_dir / name).chmod(0o644)

    files = start(data_dir)

    assert mode(data_dir) == 0o700
    assert set(files.values()) == {0o600}


def test_a_data_dir_this_user_may_not_close_stops_start_up(tmp_path, monkeypatch):
    open_dir = tmp_path / "shared"
    open_dir.mkdir(mode=0o755)
    open_dir.chmod(0o755)

    def refuse(self, mode):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(Path, "chmod", refuse)
    with pytest.raises(ConfigurationError, match=r"is open to other users \(mode 755\).*chmod go-rwx"):
        tagledger_settings._private(open_dir)


def test_a_private_path_is_left_alone(tmp_path, monkeypatch):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    monkeypatch.setattr(Path, "chmod", lambda self, mode: pytest.fail("chmod of a private path"))
    tagledger_settings._private(private)
