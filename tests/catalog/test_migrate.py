"""`manage.py migrate` alone leaves a database the app runs on, cache table included."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def manage(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """Run manage.py as a user without Redis would: embedded SQLite, so the DatabaseCache."""
    environment = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    environment |= {
        "DATABASE_URL": f"sqlite:///{data_dir / 'tagledger.sqlite3'}",
        "TAGLEDGER_DATA_DIR": str(data_dir),
        "CELERY_BROKER_URL": "filesystem://",
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=90,
    )


def test_migrate_alone_is_enough_to_poll_with_the_database_cache(tmp_path, registry, pusher, repo_name):
    pusher.push(repo_name, "1.0", "oci")
    reference = f"{registry.host}/{repo_name}"

    for command in (["migrate", "--no-input"], ["watch", reference], ["poll", reference]):
        done = manage(*command, data_dir=tmp_path)
        assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"

    assert done.stdout.startswith(f"{reference}: ok, 1 tags")  # its registry slots live in the cache
    cached = manage(
        "shell",
        "-c",
        "from django.core.cache import cache; cache.set('k', 'v'); print(cache.get('k'))",
        data_dir=tmp_path,
    )
    assert cached.stdout.splitlines()[-1] == "v", cached.stderr


def test_migrate_again_keeps_the_cache_table_it_or_createcachetable_made(tmp_path):
    for command in (["migrate", "--no-input"], ["createcachetable"], ["migrate", "catalog", "0001"]):
        done = manage(*command, data_dir=tmp_path)
        assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"

    reapplied = manage("migrate", "--no-input", data_dir=tmp_path)

    assert reapplied.returncode == 0, reapplied.stderr
    assert "Applying catalog.0002_cache_table... OK" in reapplied.stdout
