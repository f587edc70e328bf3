"""Package search at scale: `history.packages.search` (what the search page, the API and `lookup
--package` call) and `in_build`, over 10 000 builds of 300 packages each, on PostgreSQL.

`python -m bench.packages [--quick] [--queries N] [--rounds N] [--keep]`

The data (its own database `tl_bench_packages`, made afresh each run in about half a minute;
`--quick`: `tl_bench_packages_quick`, 1 000 builds): 50 repositories of 200 builds, every fifth
one multi-arch (linux/amd64 and linux/arm64, each with its own SBOM), so 12 000 platform SBOMs.
Each repository uses 300 of 400 package names; each name has 6 versions. Builds are rebuilds:
7 in 10 bump 1 to 10 packages to their next version, the rest change nothing and share their
predecessor's set. Rows are written with bulk inserts (package sets as history.packages would
store them: ids ascending, keyed by their sha256), then VACUUM ANALYZE.

Timed in-process, one at a time, first page (50 builds) each:
- name:         a package name (in three quarters of the builds: the first page's worst case);
- name@version: a name and one of its versions that some build holds;
- rare:         a package only one repository's last builds hold;
- nomatch:      a name no SBOM names;
- build:        the first page (100) of one build's packages (in_build).
A search reads the sets of the newest builds first and asks the exact index of set members only
for what they do not fill (history.packages._page_ids): `name` is mostly the first,
`name@version` of an older version and `rare` both.

Reported: p50/p95 per round and their medians against the issue's target (p95 ≤ 50 ms), the
p95 of the CPU time this process spent (Python and Django, without the database's: on a shared
machine the wall time is mostly waiting for a core), SQL queries per call, EXPLAIN ANALYZE of the
queries that read package sets, and the storage per build: the package,
package-set and attachment tables (pg_total_relation_size) over the builds, beside the same
memberships as one (build, package) row each, built for the comparison and dropped.
Results: var/bench/packages[-quick].json and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from hashlib import sha256

from bench.common import percentile, write_results

PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgres://postgres:postgres@127.0.0.1:5432")
START = datetime(2024, 1, 1, tzinfo=UTC)
NAMES, VERSIONS, PER_BUILD = 400, 6, 300
REPOSITORIES, FULL_BUILDS, QUICK_BUILDS = 50, 200, 20
MULTI_ARCH_EVERY = 5
TARGET_MS = 50
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
KINDS = ("name", "name@version", "rare", "nomatch", "build")
# Real names first, so queries read like the issue's; the rest are numbered.
REAL = (
    "openssl",
    "libssl3",
    "zlib1g",
    "curl",
    "bash",
    "ca-certificates",
    "libc6",
    "tzdata",
    "perl-base",
    "gzip",
)


def log(message: str) -> None:
    print(f"[bench.packages {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def database_url(quick: bool) -> str:
    return f"{PG_SERVER}/tl_bench_packages{'_quick' if quick else ''}"


def prepare(quick: bool) -> None:
    """A fresh, migrated database; Django set up on it."""
    import psycopg

    name = database_url(quick).rsplit("/", 1)[1]
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = database_url(quick)
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("TAGLEDGER_LOG_LEVEL", "warning")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tagledger.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def package_name(n: int) -> str:
    return REAL[n] if n < len(REAL) else f"lib{n:03d}"


def generate(builds_per_repository: int, seed: int = 13) -> dict:
    """Load the repositories, builds, platforms, packages, sets and SBOM attachments."""
    from catalog.models import Line, Registry, Repository, Tag, Version
    from history.models import Attachment, Build, Package, PackageSet, Platform, TagState
    from history.packages import package_key

    started = time.perf_counter()
    rng = random.Random(seed)  # noqa: S311 - data, not a secret
    packages = [
        Package(type="deb", name=package_name(n), version=f"{1 + n % 3}.{v}.{n % 7}",
                purl=f"pkg:deb/debian/{package_name(n)}@{1 + n % 3}.{v}.{n % 7}", key="")
        for n in range(NAMES) for v in range(VERSIONS)
    ]  # fmt: skip
    for package in packages:
        package.key = package_key(package.type, package.name, package.version, package.purl)
    Package.objects.bulk_create(packages, batch_size=5000)
    ids = {(row.name, row.version): row.pk for row in Package.objects.all()}
    package_id = [
        [ids[package_name(n), f"{1 + n % 3}.{v}.{n % 7}"] for v in range(VERSIONS)] for n in range(NAMES)
    ]

    registry = Registry.objects.create(host="registry.bench")
    repositories = Repository.objects.bulk_create(
        [Repository(registry=registry, name=f"team/app{r:02d}") for r in range(REPOSITORIES)]
    )
    sets: dict[str, PackageSet] = {}
    build_rows, platform_rows, sbom_of = [], [], []  # sbom_of: (build index, platform index or None, set key)
    versions, tags = [], []
    for r, repository in enumerate(repositories):
        line = Line.objects.create(repository=repository, name="1")
        names = sorted(rng.sample(range(NAMES), PER_BUILD))
        state = {n: rng.randrange(3) for n in names}
        arm_extra = rng.choice([n for n in range(NAMES) if n not in state])
        multi = r % MULTI_ARCH_EVERY == 0
        for k in range(builds_per_repository):
            if k and rng.random() < 0.7:
                for n in rng.sample(names, rng.randint(1, 10)):
                    state[n] = min(state[n] + 1, VERSIONS - 1)
            if k % 20 == 0:
                versions.append(Version(repository=repository, line=line, name=f"1.{k // 20}"))
            at = START + timedelta(hours=3 * k, minutes=r)
            digest = "sha256:" + sha256(f"{r} {k}".encode()).hexdigest()
            build_rows.append(
                Build(repository=repository, digest=digest, media_type=INDEX, size=1, first_seen_at=at)
            )  # fmt: skip
            amd64 = sorted(package_id[n][state[n]] for n in names)
            arches = {"amd64": amd64}
            if multi:  # one package differs on arm64
                arches["arm64"] = sorted([*amd64[1:], package_id[arm_extra][0]])
            for arch, members in arches.items():
                key = sha256(",".join(map(str, members)).encode()).hexdigest()
                sets.setdefault(key, PackageSet(key=key, packages=members, size=len(members)))
                platform_rows.append((len(build_rows) - 1, arch))
                sbom_of.append((len(build_rows) - 1, len(platform_rows) - 1, key))
    # The rare package: in the last 5 builds of the last repository only.
    rare = Package.objects.create(
        type="deb", name="librare", version="1.0", purl="", key=package_key("deb", "librare", "1.0", "")
    )
    for index in range(len(sbom_of) - 5, len(sbom_of)):
        build_index, platform_index, key = sbom_of[index]
        members = sorted([*sets[key].packages, rare.pk])
        new_key = sha256(",".join(map(str, members)).encode()).hexdigest()
        sets.setdefault(new_key, PackageSet(key=new_key, packages=members, size=len(members)))
        sbom_of[index] = (build_index, platform_index, new_key)

    Version.objects.bulk_create(versions, batch_size=2000)
    version_of = {(v.repository_id, v.name): v for v in Version.objects.all()}
    by_repository: dict[int, list[Build]] = {}
    for build in build_rows:
        by_repository.setdefault(build.repository_id, []).append(build)
    for repository_id, rows in by_repository.items():
        for k, build in enumerate(rows):
            build.version = version_of[repository_id, f"1.{k // 20}"]
    Build.objects.bulk_create(build_rows, batch_size=2000)
    platforms = Platform.objects.bulk_create(
        [
            Platform(build=build_rows[b], os="linux", architecture=arch, variant="",
                     digest="sha256:" + sha256(f"{build_rows[b].digest} {arch}".encode()).hexdigest(),
                     media_type=MANIFEST)
            for b, arch in platform_rows
        ],
        batch_size=2000,
    )  # fmt: skip
    PackageSet.objects.bulk_create(sets.values(), batch_size=500)
    set_ids = dict(PackageSet.objects.values_list("key", "pk"))
    now = datetime.now(UTC)
    Attachment.objects.bulk_create(
        [
            Attachment(build=build_rows[b], platform=platforms[p], subject=platforms[p].digest,
                       source="buildkit", kind="sbom",
                       manifest_digest="sha256:" + sha256(f"att {p}".encode()).hexdigest(),
                       blob_digest="sha256:" + sha256(f"spdx {p}".encode()).hexdigest(),
                       media_type="application/vnd.in-toto+json", predicate_type="https://spdx.dev/Document",
                       details={"format": "SPDX 2.3", "tool": "syft", "package_count": PER_BUILD},
                       packages_id=set_ids[key], package_count=PER_BUILD, found_at=now)
            for b, p, key in sbom_of
        ],
        batch_size=2000,
    )  # fmt: skip
    # `latest` and each version's tag on the version's last build: what `current` reads.
    for repository_id, rows in by_repository.items():
        for k in range(19, len(rows), 20):
            tags.append((Tag(repository_id=repository_id, name=f"1.{k // 20}", kind="exact"), rows[k]))
        tags.append((Tag(repository_id=repository_id, name="latest", kind="latest"), rows[-1]))
    Tag.objects.bulk_create([tag for tag, _ in tags], batch_size=2000)
    TagState.objects.bulk_create(
        [TagState(tag=tag, build=build, since=build.first_seen_at, confirmed_at=now) for tag, build in tags],
        batch_size=2000,
    )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return {
        "builds": len(build_rows),
        "platform_sboms": len(sbom_of),
        "package_sets": len(sets),
        "packages": len(packages) + 1,
        "seconds": round(time.perf_counter() - started, 1),
    }


def sample_queries(count: int, seed: int) -> dict[str, list[str]]:
    from django.db import connection

    from history.models import Attachment, Build, Package

    rng = random.Random(seed)  # noqa: S311 - a sample, not a secret
    with connection.cursor() as cursor:  # the package versions some build holds
        cursor.execute("SELECT DISTINCT jsonb_array_elements(packages)::bigint FROM history_packageset")
        members = [row[0] for row in cursor.fetchall()]
    held = list(
        Package.objects.filter(pk__in=members)
        .exclude(name="librare")
        .order_by("name", "version")
        .values_list("name", "version")
    )
    digests = list(
        Build.objects.filter(attachments__kind=Attachment.Kind.SBOM).values_list("digest", flat=True)
    )
    return {
        "name": [package_name(rng.randrange(NAMES)) for _ in range(count)],
        "name@version": [f"{name}@{version}" for name, version in rng.choices(held, k=count)],
        "rare": ["librare"] * count,
        "nomatch": [f"nothing{rng.randrange(10**6)}" for _ in range(count)],
        "build": rng.choices(digests, k=count),
    }


def call(kind: str, query: str):
    from history.packages import in_build, search

    return in_build(query) if kind == "build" else search(query)


def run(queries: dict[str, list[str]], rounds: int, warmup: int) -> dict:
    from django.db import connection, reset_queries

    results = {}
    for kind, texts in queries.items():
        for text in texts[:warmup]:
            call(kind, text)
        p50s, p95s, cpu95s, found, sql = [], [], [], 0, 0
        for _ in range(rounds):
            times, cpu = [], []
            for text in texts:
                reset_queries()
                started, started_cpu = time.perf_counter(), time.process_time()
                page = call(kind, text)
                times.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - started_cpu) * 1000)
                found += bool(page.items)
                sql = max(sql, len(connection.queries))
            p50s.append(round(percentile(times, 50), 2))
            p95s.append(round(percentile(times, 95), 2))
            cpu95s.append(round(percentile(cpu, 95), 2))
        results[kind] = {
            "queries": len(texts), "rounds": rounds, "p50_ms": p50s, "p95_ms": p95s,
            "median_p50_ms": sorted(p50s)[len(p50s) // 2], "median_p95_ms": sorted(p95s)[len(p95s) // 2],
            "median_python_cpu_p95_ms": sorted(cpu95s)[len(cpu95s) // 2],
            "found_share": round(found / (len(texts) * rounds), 2), "sql_per_call": sql,
        }  # fmt: skip
    return results


def explain(queries: dict[str, list[str]]) -> dict[str, str]:
    """EXPLAIN ANALYZE of each query a search ran that reads package sets (the newest builds'
    sets; the sets holding the package, through the GIN index), for a name and a rare package."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    plans = {}
    for kind in ("name", "rare"):
        with CaptureQueriesContext(connection) as captured:
            call(kind, queries[kind][0])
        explained = [queries[kind][0]]
        for query in captured.captured_queries:
            if "history_packageset" not in query["sql"]:
                continue
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {query['sql']}")
                explained.append("\n".join(row[0] for row in cursor.fetchall()))
        plans[kind] = "\n\n".join(explained)
    return plans


def storage(builds: int) -> dict:
    """Bytes per build of the set representation, and of one (build, package) row per membership."""
    from django.db import connection

    sizes = {}
    with connection.cursor() as cursor:
        for table in ("history_package", "history_packageset", "history_attachment"):
            cursor.execute("SELECT pg_total_relation_size(%s)", [table])
            sizes[table] = cursor.fetchone()[0]
        started = time.perf_counter()
        cursor.execute(
            """CREATE TABLE bench_naive_membership AS
               SELECT a.build_id, m.value::bigint AS package_id
               FROM history_attachment a JOIN history_packageset s ON s.id = a.packages_id,
                    jsonb_array_elements(s.packages) m"""
        )
        cursor.execute("CREATE INDEX ON bench_naive_membership (package_id, build_id)")
        cursor.execute("CREATE INDEX ON bench_naive_membership (build_id)")
        cursor.execute("VACUUM ANALYZE bench_naive_membership")
        cursor.execute(
            "SELECT count(*), pg_total_relation_size('bench_naive_membership') FROM bench_naive_membership"
        )
        rows, naive = cursor.fetchone()
        cursor.execute("DROP TABLE bench_naive_membership")
    total = sum(sizes.values())
    return {
        "bytes": sizes,
        "sets_bytes_per_build": round(total / builds),
        "naive_rows": rows,
        "naive_bytes": naive,
        "naive_bytes_per_build": round(naive / builds),
        "naive_seconds": round(time.perf_counter() - started, 1),
    }


def report(generated: dict, results: dict, sizes: dict) -> str:
    lines = [
        f"Package search on PostgreSQL: {generated['builds']} builds, {generated['platform_sboms']} platform "
        f"SBOMs of {PER_BUILD} packages, {generated['package_sets']} distinct sets, {generated['packages']} "
        "package versions",
        "",
        "| query | n x rounds | p50 ms | p95 ms | p95 per round | process CPU p95 ms | SQL/call | found "
        "| target p95 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, row in results.items():
        verdict = f"≤ {TARGET_MS} ms: {'met' if row['median_p95_ms'] <= TARGET_MS else 'MISSED'}"
        rounds = ", ".join(str(v) for v in row["p95_ms"])
        lines.append(
            f"| {kind} | {row['queries']} x {row['rounds']} | {row['median_p50_ms']} | "
            f"{row['median_p95_ms']} | {rounds} | {row['median_python_cpu_p95_ms']} | "
            f"{row['sql_per_call']} | {row['found_share']:.0%} | "
            f"{verdict if kind != 'build' else '—'} |"
        )
    mib = 1024 * 1024
    lines += [
        "",
        "| storage | MiB | bytes per build |",
        "|---|---|---|",
        *(
            f"| {table} | {size / mib:.1f} | {size / generated['builds']:.0f} |"
            for table, size in sizes["bytes"].items()
        ),
        f"| sets, in all | {sum(sizes['bytes'].values()) / mib:.1f} | {sizes['sets_bytes_per_build']} |",
        f"| one (build, package) row each ({sizes['naive_rows']} rows, two indexes) | "
        f"{sizes['naive_bytes'] / mib:.1f} | {sizes['naive_bytes_per_build']} |",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 000 builds, fewer queries: a smoke run")
    parser.add_argument("--queries", type=int, default=None, help="queries per kind (default 200; quick 30)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 3; quick 1)")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured queries per kind first")
    args = parser.parse_args(argv)
    log(f"generating into {database_url(args.quick)}")
    prepare(args.quick)
    from django.conf import settings

    settings.DEBUG = True  # connection.queries counts each call's SQL
    generated = generate(QUICK_BUILDS if args.quick else FULL_BUILDS)
    log(f"generated: {generated}")
    queries = sample_queries(args.queries or (30 if args.quick else 200), seed=7)
    load_before = os.getloadavg()
    results = run(queries, args.rounds or (1 if args.quick else 3), args.warmup)
    load = {"before": load_before, "after": os.getloadavg()}  # the machine is shared: say how busy
    plans = explain(queries)
    sizes = storage(generated["builds"])
    table = report(generated, results, sizes)
    print(table)
    print(f"\nload average (1, 5, 15 min) before {load['before']}, after {load['after']}")
    for kind, plan in plans.items():
        print(f"\n### {kind}\n\n```\n{plan}\n```")
    path = write_results(
        "packages" + ("-quick" if args.quick else ""),
        {
            "generated": generated,
            "load": load,
            "results": results,
            "storage": sizes,
            "plans": plans,
            "table": table,
        },
    )
    print(f"\n(results: {path})", file=sys.stderr)
    missing = [kind for kind in ("name", "name@version", "rare", "build") if results[kind]["found_share"] < 1]
    if missing or results["nomatch"]["found_share"]:
        sys.exit(f"wrong answers: {missing or 'nomatch found something'}")


if __name__ == "__main__":
    main()
