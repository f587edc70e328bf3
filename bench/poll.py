"""Polling benchmarks: first poll, unchanged re-poll, worker memory and scale-out over Celery.

Everything runs on the real parts: Debian's docker-registry (tests/support/registry.py), PostgreSQL
(database tl_bench_poll, created if missing) and Redis (db 7; only this script's keys are deleted).

    python -m bench.poll                    # the full run (what `make bench-poll` does), ~12 minutes
    python -m bench.poll --quick            # a smoke run with small sizes, ~1 minute
    python -m bench.poll --only first,repoll --rounds 5
    python -m bench.poll --ab REVISION      # before/after: REVISION's polling code vs the work tree's
    python -m bench.poll --only supply      # what reading signatures, attestations and SBOMs costs

Results: a summary on stdout and everything measured in var/bench/poll[-quick][-SECTIONS][-ab].json
(and --json PATH). bench/README.md says what each section measures and how.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

# Own database and Redis db whatever the environment says: a benchmark must never touch others.
DATABASE_URL = os.environ.get(
    "BENCH_POLL_DATABASE_URL", "postgres://postgres:postgres@127.0.0.1:5432/tl_bench_poll"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
os.environ.update(
    DJANGO_SETTINGS_MODULE="tagledger.settings",
    DATABASE_URL=DATABASE_URL,
    REDIS_URL=REDIS_URL,
    CELERY_BROKER_URL=REDIS_URL,
    TAGLEDGER_LOG_LEVEL=os.environ.get("TAGLEDGER_LOG_LEVEL", "warning"),
)

from bench.common import PROJECT_DIR, median, summary, write_results  # noqa: E402
from tests.support import pusher as images  # noqa: E402
from tests.support import worker as celery_support  # noqa: E402
from tests.support.faultproxy import FaultProxy  # noqa: E402
from tests.support.pusher import Pusher  # noqa: E402
from tests.support.registry import RunningRegistry, require_binary, start_registry  # noqa: E402

ACCEPT = ", ".join([images.OCI_INDEX, images.DOCKER_LIST, images.OCI_MANIFEST, images.DOCKER_MANIFEST])
CONCURRENCY = 8  # Registry.concurrency's default: wrk's and the Python loop's connections too
PLATFORMS = images.DEFAULT_PLATFORMS
TAG_SUFFIXES = ("", "-{stamp}", "-r1", "-bookworm", "-bookworm-{stamp}")  # 5 tags per build
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Sizes:
    builds: int  # the first-poll repository: 5 tags per build
    rounds: int  # side-by-side rounds of (a), (b), (c)
    load_seconds: int  # each wrk / ab / Python-loop run
    skopeo_sample: int
    repolls: int  # unchanged re-polls counted at the proxy
    memory_builds: int
    memory_runs: int
    scale_repositories: int
    scale_builds: int  # per repository
    scale_runs: int
    scale_timeout: float
    beat_seconds: float  # the run with the real beat (0: skipped)
    supply_builds: int = 40  # buildx-shaped builds with attestations (section `supply`)


FULL = Sizes(
    builds=400, rounds=3, load_seconds=5, skopeo_sample=100, repolls=3,
    memory_builds=2000, memory_runs=3,
    scale_repositories=50, scale_builds=8, scale_runs=3, scale_timeout=240, beat_seconds=90,
)  # fmt: skip
QUICK = Sizes(
    builds=40, rounds=1, load_seconds=2, skopeo_sample=10, repolls=1,
    memory_builds=100, memory_runs=1,
    scale_repositories=6, scale_builds=2, scale_runs=1, scale_timeout=120, beat_seconds=0,
    supply_builds=8,
)  # fmt: skip
SECTIONS = ("first", "repoll", "supply", "memory", "scale")


def log(message: str) -> None:
    print(f"[bench.poll {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the data: repositories of N builds with 5 tags each, pushed cheaply -----------------------------


def build_tags(index: int) -> list[str]:
    """Build `index`'s tags: its exact version, a timestamp tag, a revision and a variant pair."""
    version = f"{1 + index // 400}.{(index // 20) % 20}.{index % 20}"
    stamp = (EPOCH + timedelta(hours=index)).strftime("%Y%m%d%H%M")
    return [version + suffix.format(stamp=stamp) for suffix in TAG_SUFFIXES]


class ImageFactory:
    """Shared layers and configs, pushed once per repository; every build is a new manifest (an
    annotation names it), so N builds cost N manifest PUTs (plus one per index child) and no blobs."""

    def __init__(self) -> None:
        self.images = {}
        for docker in (False, True):
            for platform in PLATFORMS:
                key = "/".join(platform.get(k, "") for k in ("os", "architecture", "variant"))
                layer_type = images.DOCKER_LAYER if docker else images.OCI_LAYER
                layer = images.make_layer(f"bench/{key}", media_type=layer_type)
                config = images.make_config(
                    [layer], architecture=platform["architecture"], os=platform["os"],
                    variant=platform.get("variant"), labels={"org.example.bench": "poll"},
                    media_type=images.DOCKER_CONFIG if docker else images.OCI_CONFIG,
                )  # fmt: skip
                self.images[docker, key] = (layer, config, dict(platform))

    def blobs(self):
        for layer, config, _ in self.images.values():
            yield layer
            yield config

    def manifests(self, repository: str, index: int) -> tuple[list[tuple[bytes, str]], bytes, str]:
        """(children to PUT by digest, the top manifest, its media type) of build `index`.

        Builds alternate: OCI index (2 platforms), OCI image, Docker list (2 platforms), Docker image.
        """
        docker, multi = index % 4 >= 2, index % 2 == 0
        annotations = {"org.opencontainers.image.revision": f"{repository}#{index}"}
        image_type = images.DOCKER_MANIFEST if docker else images.OCI_MANIFEST
        children = []
        for (is_docker, _), (layer, config, platform) in self.images.items():
            if is_docker != docker:
                continue
            body = images.image_manifest(config, [layer], media_type=image_type, annotations=annotations)
            if not multi:
                return [], body, image_type
            children.append((body, image_type, platform))
        index_type = images.DOCKER_LIST if docker else images.OCI_INDEX
        body = images.index_manifest(
            [(media_type, body, platform) for body, media_type, platform in children],
            media_type=index_type, annotations=annotations,
        )  # fmt: skip
        return [(body, media_type) for body, media_type, _ in children], body, index_type


def push_repositories(
    registry: RunningRegistry, names: list[str], builds: int, threads: int = 4
) -> list[str]:
    """Push `builds` builds with 5 tags each to every repository; the tag names (the same in each)."""
    factory = ImageFactory()
    pusher = Pusher.for_registry(registry)
    for name in names:
        for blob in factory.blobs():
            pusher.push_blob(name, blob)
    pusher.close()
    local = threading.local()

    def push(job: tuple[str, int]) -> list[str]:
        name, index = job
        if not hasattr(local, "pusher"):
            local.pusher = Pusher.for_registry(registry)
        children, body, media_type = factory.manifests(name, index)
        for child, child_type in children:
            local.pusher.put_manifest(name, images.sha256_digest(child), child, child_type)
        tags = build_tags(index)
        for tag in tags:
            local.pusher.put_manifest(name, tag, body, media_type)
        return tags

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        jobs = [(name, index) for name in names for index in range(builds)]
        tags = [tag for tags in pool.map(push, jobs[:builds]) for tag in tags]
        list(pool.map(push, jobs[builds:]))
    log(f"pushed {len(names)} x {builds * len(TAG_SUFFIXES)} tags in {time.perf_counter() - started:.1f}s")
    return tags


# --- Django, on its own database --------------------------------------------------------------------


def setup_django() -> None:
    """Create tl_bench_poll if missing, migrate it, and set Django up in this process."""
    import django
    import psycopg

    base, name = DATABASE_URL.rsplit("/", 1)
    if not name.startswith("tl_bench_"):
        raise SystemExit(f"refusing to use database {name!r}: benchmarks only touch tl_bench_* databases")
    with psycopg.connect(base + "/postgres", autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def redis_client():
    import redis

    return redis.Redis.from_url(REDIS_URL)


def forget_registry_state() -> None:
    """Drop request slots and rate-limit pauses (only this project's keys: db 7 may be shared)."""
    client = redis_client()
    for key in client.scan_iter(match="*tagledger:registry:*", count=1000):
        client.delete(key)


def fresh_database() -> None:
    """Empty every table of the apps: a fresh database without re-running the migrations."""
    from django.apps import apps
    from django.db import connection

    tables = [
        model._meta.db_table
        for app in ("catalog", "history")
        for model in apps.get_app_config(app).get_models()
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    forget_registry_state()


def watch(host: str, name: str, **options):
    from catalog.models import Registry, Repository

    registry, _ = Registry.objects.get_or_create(host=host)
    return Repository.objects.select_related("registry").get(
        pk=Repository.objects.create(registry=registry, name=name, **options).pk
    )


def history_rows() -> dict[str, int]:
    from catalog.models import Line, Tag, Version
    from history.models import Build, Platform, PollRun, TagEvent, TagState

    models = (Tag, Line, Version, Build, Platform, TagEvent, TagState, PollRun)
    return {model.__name__: model.objects.count() for model in models}


# --- (a) the registry's raw rate on its manifest endpoint --------------------------------------------

WRK_SCRIPT = """
local tags = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "/v2/%s/manifests/" .. tags[(i %% #tags) + 1])
end
"""


def wrk_gets(registry: RunningRegistry, repository: str, tags: list[str], seconds: int) -> float:
    """wrk: 8 connections, GET with the full Accept header, rotating over every tag; requests/s.

    GET, because Debian's wrk 4.1.0 never completes a HEAD whose answer has a Content-Length
    (it waits for the body: 0 requests in any run). distribution reads the same manifest for both.
    """
    wrk = require_tool("wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % (", ".join(json.dumps(tag) for tag in tags), repository))
    try:
        out = subprocess.run(
            [wrk, "-t2", f"-c{CONCURRENCY}", f"-d{seconds}s", "-s", script.name,
             "-H", f"Accept: {ACCEPT}", registry.url + "/v2/"],
            capture_output=True, text=True, check=True, timeout=seconds + 60,
        ).stdout  # fmt: skip
    finally:
        os.unlink(script.name)
    if bad := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out):
        raise RuntimeError(f"wrk saw {bad[1]} non-2xx answers:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])


def ab_heads(registry: RunningRegistry, repository: str, tag: str, seconds: int) -> float:
    """ApacheBench: 8 keep-alive connections, HEAD (-i) with the full Accept header, one tag; requests/s."""
    ab = require_tool("ab")
    out = subprocess.run(
        [ab, "-q", "-k", "-i", f"-c{CONCURRENCY}", f"-t{seconds}", "-n10000000", "-H", f"Accept: {ACCEPT}",
         f"{registry.url}/v2/{repository}/manifests/{tag}"],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    ).stdout  # fmt: skip
    if (failed := re.search(r"Failed requests:\s+(\d+)", out)) and int(failed[1]):
        raise RuntimeError(f"ab saw {failed[1]} failed requests:\n{out}")
    if non_2xx := re.search(r"Non-2xx responses:\s+(\d+)", out):
        raise RuntimeError(f"ab saw {non_2xx[1]} non-2xx answers:\n{out}")
    return float(re.search(r"Requests per second:\s+([\d.]+)", out)[1])


def require_tool(name: str, *, package: str | None = None, path: str | None = None) -> str:
    found = path if path and os.access(path, os.X_OK) else shutil.which(name) if path is None else None
    if found is None:
        package = package or {"ab": "apache2-utils"}.get(name, name)
        raise SystemExit(f"`{name}` is missing; `make bench` installs it (apt-get install {package})")
    return found


def python_heads(registry: RunningRegistry, repository: str, tags: list[str], seconds: int) -> float:
    """The same HEADs from a tight Python loop: 8 threads, one requests.Session each; requests/s."""
    deadline = time.perf_counter() + seconds
    counts = [0] * CONCURRENCY

    def loop(worker: int) -> None:
        with requests.Session() as session:
            headers = {"Accept": ACCEPT}
            i = worker
            while time.perf_counter() < deadline:
                url = f"{registry.url}/v2/{repository}/manifests/{tags[i % len(tags)]}"
                if session.head(url, headers=headers).status_code != 200:
                    raise RuntimeError(f"HEAD {url} did not answer 200")
                counts[worker] += 1
                i += CONCURRENCY

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        list(pool.map(loop, range(CONCURRENCY)))
    return sum(counts) / (time.perf_counter() - started)


# --- (b) what a user would script: skopeo ------------------------------------------------------------


def skopeo_loop(registry: RunningRegistry, repository: str, tags: list[str], sample: int, seed: int) -> dict:
    """`skopeo list-tags` once, then `skopeo inspect --raw | sha256sum` for a random sample of tags."""
    skopeo = require_binary("skopeo")
    base = f"docker://{registry.host}/{repository}"
    started = time.perf_counter()
    listed = subprocess.run(
        [skopeo, "list-tags", "--tls-verify=false", "--no-creds", base],
        capture_output=True,
        check=True,
        timeout=120,
    )
    list_seconds = time.perf_counter() - started
    if len(json.loads(listed.stdout)["Tags"]) != len(tags):
        raise RuntimeError("skopeo list-tags did not list every tag")
    chosen = random.Random(seed).sample(  # noqa: S311 - a sample, not a secret
        tags, min(sample, len(tags))
    )
    started = time.perf_counter()
    for tag in chosen:
        raw = subprocess.run(
            [skopeo, "inspect", "--tls-verify=false", "--no-creds", "--raw", f"{base}:{tag}"],
            capture_output=True, check=True, timeout=60,
        ).stdout  # fmt: skip
        images.sha256_digest(raw)
    per_tag = (time.perf_counter() - started) / len(chosen)
    return {
        "list_seconds": list_seconds,
        "per_tag_seconds": per_tag,
        "sample": len(chosen),
        "extrapolated_seconds": list_seconds + per_tag * len(tags),
        "tags_per_second": len(tags) / (list_seconds + per_tag * len(tags)),
    }


# --- (c) tagledger, in this process --------------------------------------------------------------------


@dataclass
class Timed:
    """A poll's wall time and when its progress callback (once per HEAD answer) ran."""

    seconds: float = 0.0
    head_times: list[float] = field(default_factory=list)
    run: object = None
    queries: int = 0  # SQL statements the poll sent (the HTTP threads send none)

    def progress(self, done: int, total: int) -> None:
        self.head_times.append(time.perf_counter())

    def count_query(self, execute, sql, params, many, context):
        self.queries += 1
        return execute(sql, params, many, context)

    @property
    def head_seconds(self) -> float:
        return self.head_times[-1] - self.head_times[0] if len(self.head_times) > 1 else 0.0

    @property
    def head_rate(self) -> float:
        """HEAD answers per second between the first and the last one: the HEAD phase alone."""
        return (len(self.head_times) - 1) / self.head_seconds if self.head_seconds else 0.0


def timed_poll(repository) -> Timed:
    from django.db import connection

    from history import polling

    timed = Timed()
    with connection.execute_wrapper(timed.count_query):
        started = time.perf_counter()
        timed.run = polling.poll(repository, progress=timed.progress)
        timed.seconds = time.perf_counter() - started
    if timed.run.status != "ok":
        raise RuntimeError(f"poll of {repository} ended {timed.run.status}: {timed.run.error}")
    return timed


def poll_row(timed: Timed) -> dict[str, float | int]:
    return {
        "seconds": timed.seconds, "head_seconds": timed.head_seconds, "head_rate": timed.head_rate,
        "queries": timed.queries, **run_counts(timed.run),
    }  # fmt: skip


def run_counts(run) -> dict[str, int]:
    return {"heads": run.heads, "gets": run.gets, "blob_gets": run.blob_gets, "requests": run.requests,
            "changes": run.changes}  # fmt: skip


# --- 1. first poll, side by side with (a) and (b) ---------------------------------------------------


def bench_first(registry: RunningRegistry, sizes: Sizes) -> dict:
    name = "bench/first"
    tags = push_repositories(registry, [name], sizes.builds)
    rounds = []
    for number in range(1, sizes.rounds + 1):
        row: dict[str, object] = {}
        row["wrk_get_rate"] = wrk_gets(registry, name, tags, sizes.load_seconds)
        row["ab_head_rate"] = ab_heads(registry, name, tags[0], sizes.load_seconds)
        row["python_head_rate"] = python_heads(registry, name, tags, sizes.load_seconds)
        row["skopeo"] = skopeo_loop(registry, name, tags, sizes.skopeo_sample, seed=number)
        fresh_database()
        repository = watch(registry.host, name)
        first = timed_poll(repository)
        again = timed_poll(repository)
        row["first"] = poll_row(first)
        row["repoll"] = poll_row(again)
        raw = max(row["wrk_get_rate"], row["ab_head_rate"])
        skopeo = row["skopeo"]["tags_per_second"]
        row["ratios"] = {
            "first_head_phase_vs_raw": first.head_rate / raw,
            "repoll_head_phase_vs_raw": again.head_rate / raw,
            "python_loop_vs_raw": row["python_head_rate"] / raw,
            "first_vs_skopeo": len(tags) / first.seconds / skopeo,
            "repoll_vs_skopeo": len(tags) / again.seconds / skopeo,
            # The best any first poll could do here: its requests at the registry's raw rate.
            "raw_bound_first_vs_skopeo": len(tags) / (first.run.requests / raw) / skopeo,
            "raw_vs_skopeo": raw / skopeo,
        }
        rounds.append(row)
        log(
            f"round {number}: raw {raw:.0f}/s (wrk GET {row['wrk_get_rate']:.0f}, ab HEAD "
            f"{row['ab_head_rate']:.0f}), python loop {row['python_head_rate']:.0f}/s, skopeo "
            f"{skopeo:.1f} tags/s; first poll {first.seconds:.2f}s (HEAD phase {first.head_rate:.0f}/s), "
            f"re-poll {again.seconds:.2f}s (HEAD phase {again.head_rate:.0f}/s)"
        )
    return {"tags": len(tags), "builds": sizes.builds, "rounds": rounds}


# --- 2. unchanged re-poll, counted at the proxy ---------------------------------------------------------


def request_kind(method: str, path: str) -> str:
    if path == "/v2/" or path == "/v2":
        return f"{method} /v2/ (ping)"
    if path.endswith("/tags/list"):
        return f"{method} tag list page"
    if "/manifests/" in path:
        return f"{method} manifest"
    if "/blobs/" in path:
        return f"{method} blob"
    if "/referrers/" in path:
        return f"{method} referrers"
    return f"{method} other"


def bench_repoll(registry: RunningRegistry, sizes: Sizes) -> dict:
    """Re-polls of the first-poll repository (its state from section 1) through a counting proxy."""
    from catalog.models import Registry, Repository

    name = "bench/first"
    repository = Repository.objects.filter(name=name).first()
    if repository is None:  # run alone (--only repoll): make the state first
        push_repositories(registry, [name], sizes.builds)
        fresh_database()
        timed_poll(watch(registry.host, name))
    runs = []
    with FaultProxy(registry.url) as proxy:
        # The same registry behind the proxy: the repository keeps its state.
        Registry.objects.filter(host=registry.host).update(host=proxy.host)
        try:
            repository = Repository.objects.select_related("registry").get(name=name)
            for _ in range(sizes.repolls):
                before = history_rows()
                proxy.reset()
                timed = timed_poll(repository)
                after = history_rows()
                counts = Counter(request_kind(record.method, record.path) for record in proxy.records)
                runs.append({
                    "seconds": timed.seconds, "head_rate": timed.head_rate, "tags": timed.run.tags_seen,
                    "requests": dict(sorted(counts.items())), "max_concurrent": proxy.max_concurrent,
                    "rows_added": {model: after[model] - before[model] for model in after},
                    "statuses": dict(Counter(str(record.status) for record in proxy.records)),
                })  # fmt: skip
        finally:
            Registry.objects.filter(host=proxy.host).update(host=registry.host)
    log(f"unchanged re-poll via proxy: {runs[-1]['requests']}, rows added {runs[-1]['rows_added']}")
    direct = [timed_poll(Repository.objects.select_related("registry").get(name=name)).seconds for _ in runs]
    return {"runs": runs, "direct_seconds": direct}


# --- 3. the supply chain: what reading signatures, attestations and SBOMs costs ------------------------


def push_supply(registry: RunningRegistry, name: str, builds: int) -> int:
    """`builds` builds as buildx pushes them (2 platforms, each with an SPDX SBOM and a SLSA v1
    provenance statement from tests/history/sboms), every other one signed with a cosign `.sig` tag
    (a real certificate and signature, tests/support/sigstore.py); the number of tags."""
    from tests.support import sigstore

    sboms = PROJECT_DIR / "tests" / "history" / "sboms"
    predicates = {
        images.SPDX: json.loads((sboms / "trivy-alpine-3.15.spdx.json").read_text()),
        images.SLSA_V1: json.loads((sboms / "buildkit-provenance-v1.intoto.json").read_text())["predicate"],
    }
    signer = sigstore.make_signer()
    pusher = Pusher.for_registry(registry)
    tags = 0
    try:
        for index in range(builds):
            pushed = pusher.push_buildx_index(
                name, f"1.0.{index}", seed=f"supply {index}", predicates=predicates
            )
            tags += 1
            if index % 2 == 0:
                payload = sigstore.simple_signing_payload(f"{registry.host}/{name}", pushed.digest)
                layer = (
                    images.Blob(payload, sigstore.SIMPLE_SIGNING),
                    sigstore.cosign_signature_layer(signer, payload),
                )
                pusher.push_cosign(name, pushed.digest, "sig", [layer])
                tags += 1
    finally:
        pusher.close()
    return tags


def bench_supply(registry: RunningRegistry, sizes: Sizes) -> dict:
    """A first poll and an unchanged re-poll of buildx-shaped builds, counted at a proxy, with the
    poll's supply-chain step (history.attachments.discover) and with it replaced by nothing: the
    difference is what reading signatures, attestations and SBOMs costs. distribution 2.8 has no
    referrers API, so that part is the one request that finds so."""
    import catalog.models
    from catalog.oci.auth import AuthMemory
    from history import attachments
    from history.models import Attachment, PackageSet

    name = "bench/supply"
    tags = push_supply(registry, name, sizes.supply_builds)
    variants = {"without": lambda *args, **kwargs: 0, "with": attachments.discover}
    results: dict[str, dict] = {}
    with FaultProxy(registry.url) as proxy:
        for label, discover in variants.items():
            fresh_database()
            catalog.models.AUTH_MEMORY = AuthMemory()  # each variant pings once, as a new process would
            repository = watch(proxy.host, name)
            original, attachments.discover = attachments.discover, discover
            try:
                row = {}
                for poll_name in ("first", "repoll"):
                    proxy.reset()
                    timed = timed_poll(repository)
                    counts = Counter(request_kind(record.method, record.path) for record in proxy.records)
                    row[poll_name] = {**poll_row(timed), "by_kind": dict(sorted(counts.items()))}
            finally:
                attachments.discover = original
            row["attachments"] = Attachment.objects.count()
            row["package_sets"] = PackageSet.objects.count()
            results[label] = row
            log(f"supply chain {label} the step: first poll {row['first']['by_kind']} "
                f"({row['first']['seconds']:.2f}s), re-poll {row['repoll']['by_kind']}")  # fmt: skip
    extra = {
        poll: results["with"][poll]["requests"] - results["without"][poll]["requests"]
        for poll in ("first", "repoll")
    }
    return {"builds": sizes.supply_builds, "tags": tags, "variants": results, "extra_requests": extra}


# --- 5. worker memory ---------------------------------------------------------------------------------


def manage_poll(reference: str) -> dict:
    """`manage.py poll REFERENCE` in a child process: its wall time and peak RSS.

    The peak comes from GNU time (-v), which forks the poll from its own small image: a child forked
    straight from this process would count this process's pages too (Linux keeps the pre-exec peak).
    """
    time_binary = require_tool("time", package="time", path="/usr/bin/time")
    started = time.perf_counter()
    child = subprocess.run(
        [time_binary, "-v", sys.executable, "manage.py", "poll", reference],
        cwd=PROJECT_DIR, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=900,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        raise RuntimeError(f"manage.py poll {reference} failed:\n{child.stdout}\n{child.stderr[-3000:]}")
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", child.stderr)[1])
    return {"seconds": seconds, "peak_rss_mb": peak_kb / 1024, "output": child.stdout.strip()}


def bench_memory(registry: RunningRegistry, sizes: Sizes) -> dict:
    big, tiny = "bench/big", "bench/tiny"
    tags = push_repositories(registry, [big], sizes.memory_builds)
    push_repositories(registry, [tiny], 1)
    runs = []
    for _ in range(sizes.memory_runs):
        fresh_database()
        watch(registry.host, big)
        watch(registry.host, tiny)
        baseline = manage_poll(f"{registry.host}/{tiny}")
        first = manage_poll(f"{registry.host}/{big}")
        again = manage_poll(f"{registry.host}/{big}")
        runs.append({"baseline": baseline, "first": first, "repoll": again})
        log(
            f"memory: {len(tags)} tags, first poll {first['peak_rss_mb']:.0f} MB in {first['seconds']:.1f}s, "
            f"re-poll {again['peak_rss_mb']:.0f} MB in {again['seconds']:.1f}s; "
            f"5-tag poll {baseline['peak_rss_mb']:.0f} MB"
        )
    return {"tags": len(tags), "builds": sizes.memory_builds, "runs": runs}


# --- 6. scale-out: Celery workers on Redis + PostgreSQL --------------------------------------------------


def _all_polled(names: list[str]) -> bool:
    from catalog.models import Repository
    from history.models import PollRun

    done = (
        PollRun.objects.filter(repository__name__in=names, status=PollRun.Status.OK)
        .values("repository").distinct().count()
    )  # fmt: skip
    return (
        done == len(names)
        and not Repository.objects.filter(name__in=names, lease_until__isnull=False).exists()
    )


def _polled_count(names: list[str]) -> int:
    from history.models import PollRun

    return PollRun.objects.filter(repository__name__in=names).exclude(status="running").count()


def _dispatch_until_polled(names: list[str], *, every: float, timeout: float) -> float | None:
    """Call dispatch (what beat does) every `every` s until each repository has been polled once."""
    from history.tasks import dispatch

    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        dispatch()
        tick = time.perf_counter()
        while time.perf_counter() - tick < every:
            if _all_polled(names):
                return time.perf_counter() - started
            time.sleep(0.1)
    return None


def bench_scale(registry: RunningRegistry, sizes: Sizes) -> dict:
    names = [f"bench/scale-{index:02d}" for index in range(sizes.scale_repositories)]
    push_repositories(registry, names, sizes.scale_builds)
    workdir = Path(tempfile.mkdtemp(prefix="tl-bench-scale-"))
    results = []
    configs = [(threads, workers) for threads in (8, 4) for workers in (1, 2)]
    with FaultProxy(registry.url) as proxy:
        for threads, workers in configs:
            results.append(_scale_config(proxy, names, sizes, workdir, threads=threads, workers=workers))
        if sizes.beat_seconds:
            results.append(_scale_config(proxy, names, sizes, workdir, threads=8, workers=2, beat=True))
    shutil.rmtree(workdir, ignore_errors=True)
    return {
        "repositories": len(names),
        "tags_each": sizes.scale_builds * len(TAG_SUFFIXES),
        "configs": results,
    }


def _scale_config(
    proxy, names, sizes: Sizes, workdir: Path, *, threads: int, workers: int, beat=False
) -> dict:
    env = celery_support.celery_environment(
        database_url=DATABASE_URL, broker_url=REDIS_URL, data_dir=workdir,
        REDIS_URL=REDIS_URL, TAGLEDGER_POLL_THREADS=str(threads), TAGLEDGER_LOG_LEVEL="info",
    )  # fmt: skip
    # Nothing of an earlier run may be consumed: the queue is empty when a run finishes, but not
    # after a crash. Only this app's keys (db 7 may be shared with the other benchmarks).
    client = redis_client()
    for key in ("celery", "unacked", "unacked_index", "unacked_mutex"):
        client.delete(key)
    label = f"{workers} worker{'s' * (workers > 1)}, TAGLEDGER_POLL_THREADS={threads}" + (
        ", real beat (15 s)" if beat else ""
    )
    processes = [
        celery_support.worker(env, workdir, name=f"w{index}-{threads}-{int(beat)}", concurrency=4)
        for index in range(workers)
    ]
    runs = []
    with celery_support.running(*processes):
        for _ in range(1 if beat else sizes.scale_runs):
            fresh_database()
            for name in names:
                watch(proxy.host, name)
            logs_before = [len(process.log) for process in processes]
            proxy.reset()
            if beat:
                with celery_support.running(celery_support.beat(env, workdir, schedule=workdir / "schedule")):
                    seconds = _dispatch_until_polled(names, every=15.0, timeout=sizes.beat_seconds)
            else:
                seconds = _dispatch_until_polled(names, every=1.0, timeout=sizes.scale_timeout)
            bounced = sum(
                process.log[start:].count("rescheduled")
                for process, start in zip(processes, logs_before, strict=True)
            )
            runs.append({
                "seconds": seconds, "polled": _polled_count(names), "bounced": bounced,
                "max_concurrent": proxy.max_concurrent, "requests": len(proxy.records),
            })  # fmt: skip
            log(f"scale-out, {label}: {runs[-1]}")
    return {"label": label, "threads": threads, "workers": workers, "beat": beat, "runs": runs}


# --- before/after: the polling code of another commit, in this same process ------------------------------

AB_MODULES = {"history.polling": "history/polling.py", "catalog.oci.client": "catalog/oci/client.py"}


def load_revision(revision: str) -> dict[str, types.ModuleType]:
    """history.polling and catalog.oci.client as they were at `revision` (read with `git show`),
    loaded beside the current ones: both variants then run in one process, round by round."""
    modules = {}
    for index, (name, path) in enumerate(AB_MODULES.items()):
        if Path(revision).is_dir():  # a copy of the tree, e.g. of uncommitted work
            source = (Path(revision) / path).read_text()
        else:
            source = subprocess.run(
                ["git", "show", f"{revision}:{path}"],
                cwd=PROJECT_DIR,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        package, _, leaf = name.rpartition(".")
        module = types.ModuleType(f"{package}._{leaf}_ab{index}_{abs(hash(revision))}")
        module.__package__ = package
        module.__file__ = f"{revision}:{path}"
        sys.modules[module.__name__] = module  # dataclasses look their module up
        exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102 - our own history
        modules[name] = module
    return modules


def variant_poll(modules: dict[str, types.ModuleType], repository) -> Timed:
    """timed_poll with the given polling module and client class (the registry's settings as usual)."""
    from django.conf import settings
    from django.db import connection

    registry = repository.registry
    client = modules["catalog.oci.client"].RegistryClient.from_docker_config(
        registry.host, settings.DOCKER_CONFIG, insecure=registry.insecure,
        concurrency=registry.concurrency, timeout=settings.REGISTRY_TIMEOUT,
    )  # fmt: skip
    timed = Timed()
    try:
        with connection.execute_wrapper(timed.count_query):
            started = time.perf_counter()
            timed.run = modules["history.polling"].poll(repository, progress=timed.progress, client=client)
            timed.seconds = time.perf_counter() - started
    finally:
        client.close()
    if timed.run.status != "ok":
        raise RuntimeError(f"poll of {repository} ended {timed.run.status}: {timed.run.error}")
    return timed


def client_cpu_per_head(client_module, registry: RunningRegistry, repository: str, tags: list[str]) -> float:
    """CPU microseconds this process spends per HEAD through RegistryClient, one thread, no poll."""
    with client_module.RegistryClient(registry.host) as client:
        client.head_manifest(repository, tags[0])  # the ping, outside the measurement
        started = time.process_time()
        for tag in tags:
            client.head_manifest(repository, tag)
        return (time.process_time() - started) / len(tags) * 1e6


def bench_ab(registry: RunningRegistry, sizes: Sizes, revision: str) -> dict:
    """First poll and re-poll with the polling code of `revision` and of the work tree, alternating."""
    import catalog.oci.client
    import history.polling

    variants = {
        revision: load_revision(revision),
        "work tree": {"history.polling": history.polling, "catalog.oci.client": catalog.oci.client},
    }
    name = "bench/first"
    tags = push_repositories(registry, [name], sizes.builds)
    rows = []
    for number in range(sizes.rounds):
        order = list(variants) if number % 2 == 0 else list(reversed(variants))
        row = {}
        for label in order:
            modules = variants[label]
            fresh_database()
            repository = watch(registry.host, name)
            first = variant_poll(modules, repository)
            again = variant_poll(modules, repository)
            cpu = client_cpu_per_head(modules["catalog.oci.client"], registry, name, tags[:500])
            row[label] = {"first": poll_row(first), "repoll": poll_row(again), "client_cpu_us_per_head": cpu}
            log(
                f"before/after round {number + 1}, {label}: first poll {first.seconds:.2f}s "
                f"({first.queries} queries, HEAD phase {first.head_rate:.0f}/s), "
                f"re-poll {again.seconds:.2f}s (HEAD phase {again.head_rate:.0f}/s), "
                f"client {cpu:.0f} us CPU per HEAD"
            )
        rows.append(row)
    return {"revision": revision, "tags": len(tags), "rounds": rows}


# --- the report -------------------------------------------------------------------------------------------


def report(results: dict) -> str:
    lines = []
    if first := results.get("first"):
        rounds = first["rounds"]

        def column(*path):
            values = []
            for row in rounds:
                value = row
                for key in path:
                    value = value[key]
                values.append(value)
            return summary(values)

        lines.append(f"first poll: {first['tags']} tags, {first['builds']} builds, {len(rounds)} rounds")
        for label, path in [
            ("(a) wrk GET rotating, req/s", ("wrk_get_rate",)),
            ("(a) ab HEAD, req/s", ("ab_head_rate",)),
            ("python HEAD loop, req/s", ("python_head_rate",)),
            ("(b) skopeo, tags/s", ("skopeo", "tags_per_second")),
            ("(c) first poll, s", ("first", "seconds")),
            ("(c) first poll HEAD phase, HEAD/s", ("first", "head_rate")),
            ("unchanged re-poll, s", ("repoll", "seconds")),
            ("re-poll HEAD phase, HEAD/s", ("repoll", "head_rate")),
        ] + [(f"ratio {key}", ("ratios", key)) for key in rounds[0]["ratios"]]:
            stats = column(*path)
            lines.append(
                f"  {label:45s} median {stats['median']:9.2f}  min {stats['min']:9.2f}"
                f"  max {stats['max']:9.2f}"
            )
    if repoll := results.get("repoll"):
        run = repoll["runs"][-1]
        lines.append(f"unchanged re-poll via proxy: {run['requests']}; rows added {run['rows_added']}")
        lines.append(f"  seconds via proxy {[round(r['seconds'], 2) for r in repoll['runs']]}, "
                     f"direct {[round(s, 2) for s in repoll['direct_seconds']]}")  # fmt: skip
    if supply := results.get("supply"):
        lines.append(
            f"supply chain: {supply['builds']} buildx builds, {supply['tags']} tags; extra requests "
            f"first poll {supply['extra_requests']['first']}, re-poll {supply['extra_requests']['repoll']}"
        )
        for label, row in supply["variants"].items():
            first, again = row["first"], row["repoll"]
            lines.append(f"  {label:7s} the step: first {first['by_kind']} {first['seconds']:.2f}s; "
                         f"re-poll {again['by_kind']}; {row['attachments']} attachments")  # fmt: skip
    if ab := results.get("ab"):
        lines.append(f"before ({ab['revision']}) / after (work tree), {ab['tags']} tags:")
        for label in (ab["revision"], "work tree"):
            for key, path in [("first poll s", ("first", "seconds")),
                              ("first poll queries", ("first", "queries")),
                              ("first HEAD/s", ("first", "head_rate")), ("re-poll s", ("repoll", "seconds")),
                              ("re-poll HEAD/s", ("repoll", "head_rate")),
                              ("client us CPU/HEAD", ("client_cpu_us_per_head",))]:  # fmt: skip
                values = []
                for row in ab["rounds"]:
                    value = row[label]
                    for part in path:
                        value = value[part]
                    values.append(value)
                lines.append(
                    f"  {label:10s} {key:20s} median {median(values):9.2f}"
                    f"  all {[round(v, 2) for v in values]}"
                )
    if memory := results.get("memory"):
        for key in ("baseline", "first", "repoll"):
            values = [run[key]["peak_rss_mb"] for run in memory["runs"]]
            seconds = [run[key]["seconds"] for run in memory["runs"]]
            lines.append(f"memory {key:8s} peak RSS MB median {median(values):.1f} ({min(values):.1f}-"
                         f"{max(values):.1f}); seconds median {median(seconds):.1f}")  # fmt: skip
    if scale := results.get("scale"):
        for config in scale["configs"]:
            seconds = [run["seconds"] for run in config["runs"]]
            lines.append(f"scale-out {config['label']}: seconds {seconds}, bounced "
                         f"{[run['bounced'] for run in config['runs']]}, max concurrent "
                         f"{[run['max_concurrent'] for run in config['runs']]}")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.poll", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one round: a smoke run")
    parser.add_argument("--rounds", type=int, help="side-by-side rounds of the first-poll section")
    parser.add_argument(
        "--ab", metavar="REVISION", help="before/after: also poll with history/polling.py and "
        "catalog/oci/client.py of this commit, alternating with the work tree's (section `ab`)",
    )  # fmt: skip
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"comma-separated, of {','.join(SECTIONS)}"
    )
    parser.add_argument(
        "--json", type=Path, help="write the results here (default var/bench/poll[-quick].json)"
    )
    args = parser.parse_args(argv)
    sections = [section.strip() for section in args.only.split(",") if section.strip()]
    if args.ab and args.only == parser.get_default("only"):
        sections = []  # --ab alone runs only the before/after comparison
    if unknown := set(sections) - set(SECTIONS):
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    # A `kill` ends the run through `finally`, so the registry and workers it started stop too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sizes = QUICK if args.quick else FULL
    if args.rounds:
        sizes = dataclasses.replace(sizes, rounds=args.rounds)
    setup_django()
    started = time.perf_counter()
    results: dict[str, object] = {"command": " ".join(["python -m bench.poll", *(argv or sys.argv[1:])]),
                                  "sizes": sizes.__dict__}  # fmt: skip
    registry = start_registry("none")
    try:
        for section in SECTIONS:
            if section in sections:
                log(f"--- {section}")
                results[section] = globals()[f"bench_{section}"](registry, sizes)
        if args.ab:
            log(f"--- before ({args.ab}) / after (work tree)")
            results["ab"] = bench_ab(registry, sizes, args.ab)
    finally:
        registry.stop()
    results["total_seconds"] = time.perf_counter() - started
    # A partial run must not overwrite the full run's file: its sections are in the name.
    partial = sections if set(sections) != set(SECTIONS) else []
    name = "-".join(["poll", *(["quick"] if args.quick else []), *partial, *(["ab"] if args.ab else [])])
    path = write_results(name, results)
    if args.json:
        shutil.copyfile(path, args.json)
        path = args.json
    print(report(results))
    log(f"done in {results['total_seconds']:.0f}s; results in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
