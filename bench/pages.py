"""Pages at scale: server time of the busiest read pages, in-process with Django's test client.

`python -m bench.pages --backend postgres|sqlite [--quick] [--label NAME]`

On the generated database (bench/generate.py, made or reused first), each page is requested
`--requests` times per round after a warm-up, with the full middleware stack and template
rendering but no network: what a gunicorn worker spends per request.

- changelog:       /changelog, the newest 50 events of all repositories;
- changelog_deep:  /changelog?cursor=… 1 000 pages deep (50 000 events; --quick: 100 pages),
                   with the cursor page 1 000's "older changes" link carries;
- version:         /versions/<id>/ of the version with 5 000 builds (repository 000's 1.0.0);
- compare:         /compare?a=…&b=… two consecutive builds of a multi-arch repository;
- search:          /search?q=<the 12-hex image ID of a random platform> (bare hex: a prefix);
- search_infix:    /search?q=<12 hex from the middle of a config digest> (no digest starts with them);
- search_digest:   /search?q=sha256:<a whole build digest>;
- build:           /builds/<id>/ of a build of that 5 000-build version (no target; it lists siblings).
- repository:      /repositories/<id>/ of `bench/tags-10k` (see `tagged_repository`: 10 000 tags,
                   2 000 versions of 10 variants in 8 lines, 6 000 builds), added to the generated
                   database once and kept;
- repository_q:    the same page filtered with `?q=slim` (600 versions match: the row budget holds);
- repository_line: the same page with a closed line and its inactive versions opened
                   (`?line=3.10&inactive=1`, what the "show" links ask for: 250 rows);
- repository_tags: the same page with its tags list 100 pages deep (`?cursor=`);
- api_tags:        /api/v1/repositories/<id>/tags?cursor=… the same page of tags from the API;
- api_versions:    /api/v1/repositories/<id>/versions: all 2 000 rows (not paged; no target);
- api_builds:      /api/v1/repositories/<id>/versions/1.0.0/builds: the 5 000-build version's digest
                   history, its first page (50 builds; before the paged contract: all 5 000);
- api_builds_100:  the same with `limit=100`, the largest page;
- api_builds_deep: the same, 50 pages (2 500 builds) deep (`?cursor=` of the page before).

Reports p50/p95 per page (median over rounds), SQL queries per request and response size.
Results: var/bench/pages-<backend>[-quick][-label].json and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import timedelta

from bench.common import percentile, write_results
from bench.generate import log, prepare

TARGET_MS = 50  # p95 per page; the deep changelog page also within 1.5 times the first
TAGGED = "bench/tags-10k"


def deep_cursor(pages: int) -> str:
    """The cursor of the link from page `pages` to the next: the last event that page shows.

    Checked against walking the first pages with the changelog's own `page()`.
    """
    from history.changelog import PAGE_SIZE, ChangelogFilter, page
    from history.keyset import Cursor
    from history.models import TagEvent

    newest = TagEvent.objects.order_by("-detected_at", "-id").values_list("detected_at", "id")
    walked = None
    for number in range(1, 4):
        walked = page(ChangelogFilter(), walked).next_cursor
        assert walked == Cursor(*newest[PAGE_SIZE * number - 1]), "constructed cursors disagree with walking"
    return Cursor(*newest[PAGE_SIZE * pages - 1]).encode()


def tagged_repository() -> int:
    """The id of `bench/tags-10k`, made on first use: a python-like repository at the size of
    docker.io/library/python. Lines 3.7 to 3.14, 25 patch releases each, in 10 variants: 2 000
    versions; each built 3 times, every build with its timestamp tag (`3.12.4-slim-202601011200`):
    6 000 builds and timestamp tags. Each version's exact tag on its newest build; each line's
    newest release also tagged `3.12-slim`, the newest line `3-slim`, `slim` and `latest`; and
    1 900 commit tags (`sha-1a2b3c4`, not understood) on builds at random: 10 000 tags. Releases
    are 40 days apart within a line, so only the newest two or three of a line are active.
    """
    from django.db import connection, transaction
    from django.utils import timezone

    from catalog.models import Line, Registry, Repository, Tag, Version
    from history.models import Build, TagEvent, TagState

    found = Repository.objects.filter(name=TAGGED).values_list("pk", flat=True).first()
    if found:
        return found
    started = time.perf_counter()
    rng = random.Random(10_000)  # noqa: S311 - test data
    now = timezone.now()
    variants = ["", "slim", "alpine", "bookworm", "slim-bookworm", "alpine3.21", "alpine3.22", "trixie",
                "slim-trixie", "windowsservercore-ltsc2022"]  # fmt: skip
    minors = range(14, 6, -1)  # 3.14 … 3.7
    with transaction.atomic():
        registry, _ = Registry.objects.get_or_create(host="docker.io")
        repository = Repository.objects.create(registry=registry, name=TAGGED, enabled=False)
        lines = Line.objects.bulk_create(
            Line(repository=repository, variant=variant, name=f"3.{minor}")
            for minor in minors
            for variant in variants
        )
        line_of = {(line.name, line.variant): line for line in lines}
        versions = Version.objects.bulk_create(
            Version(repository=repository, variant=variant, name=f"3.{minor}.{patch}",
                    line=line_of[f"3.{minor}", variant])
            for minor in minors for patch in range(25) for variant in variants
        )  # fmt: skip
        builds, tags = [], []  # tags: (name, kind, version, variant, build index)
        for version in versions:
            minor, patch = (int(part) for part in version.name.split(".")[1:])
            released = now - timedelta(days=(24 - patch) * 40 + (14 - minor) * 3 + 1)
            suffix = f"-{version.variant}" if version.variant else ""
            for rebuild in range(3):
                at = released - timedelta(days=(2 - rebuild) * 7)  # weekly, the last at its release
                builds.append(Build(
                    repository=repository, digest=f"sha256:{rng.randbytes(32).hex()}", size=1500,
                    media_type="application/vnd.oci.image.index.v1+json", version=version,
                    built_at=at, first_seen_at=at + timedelta(minutes=5),
                ))  # fmt: skip
                tags.append((f"{version.name}{suffix}-{at:%Y%m%d%H%M}", "timestamp", version.name,
                             version.variant, len(builds) - 1))  # fmt: skip
            newest = len(builds) - 1
            tags.append((f"{version.name}{suffix}", "exact", version.name, version.variant, newest))
            if patch == 24:
                tags.append((f"3.{minor}{suffix}", "minor", f"3.{minor}", version.variant, newest))
                if minor == 14:
                    tags.append((f"3{suffix}", "major", "3", version.variant, newest))
                    tags.append((version.variant or "latest", "latest" if not suffix else "other", "",
                                 version.variant, newest))  # fmt: skip
        for number in range(10_000 - len(tags)):
            tags.append((f"sha-{number:07x}", "other", "", "", rng.randrange(len(builds))))
        builds = Build.objects.bulk_create(builds, batch_size=2000)
        made = Tag.objects.bulk_create(
            (Tag(repository=repository, name=name, kind=kind, version=version, variant=variant)
             for name, kind, version, variant, _ in tags),
            batch_size=2000,
        )  # fmt: skip
        TagState.objects.bulk_create(
            (TagState(tag=tag, build=builds[index], present=True, since=builds[index].first_seen_at,
                      confirmed_at=now) for tag, (*_, index) in zip(made, tags, strict=True)),
            batch_size=2000,
        )  # fmt: skip
        TagEvent.objects.bulk_create(
            (TagEvent(tag=tag, kind="created", build=builds[index], detected_at=builds[index].first_seen_at)
             for tag, (*_, index) in zip(made, tags, strict=True)),
            batch_size=2000,
        )  # fmt: skip
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # what autovacuum does after such a load; generate() does it too
    log(f"made {TAGGED}: {len(made)} tags, {len(versions)} versions, {len(builds)} builds "
        f"in {time.perf_counter() - started:.0f} s")  # fmt: skip
    return repository.pk


def tags_cursor(repository: int, pages: int) -> str:
    """The cursor of the link from page `pages` of a repository's tags to the next (tags page by
    name), checked against the reader's own first page."""
    from catalog.models import Repository
    from history.keyset import NameCursor
    from history.lines import TAG_PAGE, tag_page
    from history.models import TagState

    names = (
        TagState.objects.filter(tag__repository_id=repository, present=True)
        .exclude(tag__kind="artifact")
        .order_by("tag__name")
        .values_list("tag__name", flat=True)
    )
    first = tag_page(Repository.objects.get(pk=repository)).next
    assert first == NameCursor(names[TAG_PAGE - 1]), "constructed cursors disagree with the reader"
    return NameCursor(names[TAG_PAGE * pages - 1]).encode()


def builds_cursor(version, pages: int, size: int = 50) -> str:
    """The `next` of page `pages` of a version's builds in the API (`size` a page), checked
    against the reader's own first page."""
    from history.models import Build
    from history.versions import NEWEST_FIRST, digest_history, position

    newest = Build.objects.filter(version=version).order_by(*NEWEST_FIRST)
    assert digest_history(version, size=size).next_cursor == position(newest[size - 1]), "cursors disagree"
    return position(newest[size * pages - 1]).encode()


def page_urls(quick: bool, rng: random.Random) -> dict[str, list[str]]:
    """A list of URLs per page; requests cycle through them."""
    from catalog.models import Version
    from history.models import Build, Platform

    hot = Version.objects.get(repository__name="bench/app-000", name="1.0.0")
    hot_builds = list(Build.objects.filter(version=hot).order_by("pk").values_list("pk", "digest"))
    top_platform = Platform.objects.order_by("-pk").values_list("pk", flat=True).first()
    configs = Platform.objects.filter(pk__in=rng.sample(range(1, top_platform + 1), 50)).values_list(
        "config_digest", flat=True
    )
    pairs = [hot_builds[i : i + 2] for i in rng.sample(range(len(hot_builds) - 1), 20)]
    tagged = tagged_repository()
    deep_tags = tags_cursor(tagged, 100)
    return {
        "changelog": ["/changelog"],
        "changelog_deep": [f"/changelog?cursor={deep_cursor(100 if quick else 1000)}"],
        "version": [f"/versions/{hot.pk}/"],
        "compare": [f"/compare?a={older[1]}&b={newer[1]}" for older, newer in pairs],
        "search": [f"/search?q={config[7:19]}" for config in configs],
        "search_infix": [f"/search?q={config[30:42]}" for config in configs],
        "search_digest": [f"/search?q={digest}" for _, digest in rng.sample(hot_builds, 20)],
        "build": [f"/builds/{pk}/" for pk, _ in rng.sample(hot_builds, 20)],
        "repository": [f"/repositories/{tagged}/"],
        "repository_q": [f"/repositories/{tagged}/?q=slim"],
        "repository_line": [f"/repositories/{tagged}/?line=3.10&inactive=1"],
        "repository_tags": [f"/repositories/{tagged}/?cursor={deep_tags}"],
        "api_tags": [f"/api/v1/repositories/{tagged}/tags?cursor={deep_tags}"],
        "api_versions": [f"/api/v1/repositories/{tagged}/versions"],
        "api_builds": [f"/api/v1/repositories/{hot.repository_id}/versions/1.0.0/builds"],
        "api_builds_100": [f"/api/v1/repositories/{hot.repository_id}/versions/1.0.0/builds?limit=100"],
        "api_builds_deep": [
            f"/api/v1/repositories/{hot.repository_id}/versions/1.0.0/builds?cursor="
            f"{builds_cursor(hot, 5 if quick else 50)}"
        ],
    }


def run(urls: dict[str, list[str]], requests: int, rounds: int) -> dict:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="localhost")
    results = {}
    for name, targets in urls.items():
        for url in targets[:5]:  # warm up
            assert client.get(url).status_code == 200, url
        rounds_ms = []
        for _ in range(rounds):
            times = []
            for index in range(requests):
                url = targets[index % len(targets)]
                started = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (url, response.status_code)
            rounds_ms.append(times)
        with CaptureQueriesContext(connection) as captured:
            response = client.get(targets[0])
        results[name] = {
            "url": targets[0],
            "requests": requests,
            "rounds": rounds,
            "p50_ms": [round(statistics.median(times), 1) for times in rounds_ms],
            "p95_ms": [round(percentile(times, 95), 1) for times in rounds_ms],
            "median_p50_ms": round(statistics.median(statistics.median(t) for t in rounds_ms), 1),
            "median_p95_ms": round(statistics.median(percentile(t, 95) for t in rounds_ms), 1),
            "sql_queries": len(captured.captured_queries),
            "sql_ms": round(sum(float(q["time"]) for q in captured.captured_queries) * 1000, 1),
            "kib": round(len(response.content) / 1024, 1),
        }
        log(f"{name}: p50 {results[name]['median_p50_ms']} ms, p95 {results[name]['median_p95_ms']} ms, "
            f"{results[name]['sql_queries']} queries")  # fmt: skip
    return results


def report(backend: str, results: dict, generated: dict) -> str:
    first = results.get("changelog", {}).get("median_p95_ms")
    lines = [
        f"Pages on {backend}: {generated['rows']['history_build']} builds, "
        f"{generated['rows']['history_tagevent']} events",
        "",
        "| page | p50 ms | p95 ms | p95 per round | SQL queries (ms) | KiB | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in results.items():
        verdict = f"p95 ≤ {TARGET_MS} ms: {'met' if row['median_p95_ms'] <= TARGET_MS else 'MISSED'}"
        if name == "changelog_deep" and first:
            ratio = row["median_p95_ms"] / first
            verdict += f"; {ratio:.2f}x first page: {'met' if ratio <= 1.5 else 'MISSED'}"
        if name in ("build", "api_versions", "repository_line"):
            verdict = "—"
        lines.append(
            f"| {name} | {row['median_p50_ms']} | {row['median_p95_ms']} | "
            f"{', '.join(str(v) for v in row['p95_ms'])} | {row['sql_queries']} ({row['sql_ms']}) | "
            f"{row['kib']} | {verdict} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["postgres", "sqlite"], required=True)
    parser.add_argument("--quick", action="store_true", help="small data for a smoke run")
    parser.add_argument("--requests", type=int, default=None, help="requests per page and round (default 50)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 3; quick 1)")
    parser.add_argument("--label", default="", help="suffix of the results file, e.g. before")
    parser.add_argument("--only", nargs="*", help="page names to run")
    args = parser.parse_args(argv)
    generated = prepare(args.backend, args.quick, reuse=True)
    from tagledger.gunicorn import freeze_loaded_app

    urls = page_urls(args.quick, random.Random(11))  # noqa: S311 - a sample, not a secret
    if args.only:
        urls = {name: url for name, url in urls.items() if name in args.only}
    # What each gunicorn worker does once the app is loaded (tagledger/gunicorn.py): the benchmark
    # freezes the heap only because the deployment does the same.
    freeze_loaded_app()
    load_before = os.getloadavg()
    results = run(urls, args.requests or (20 if args.quick else 50), args.rounds or (1 if args.quick else 3))
    load = {"before": load_before, "after": os.getloadavg()}  # the machine is shared: say how busy
    table = report(args.backend, results, generated)
    print(table)
    print(f"\nload average (1, 5, 15 min) before {load['before']}, after {load['after']}")
    name = "-".join(
        part for part in ("pages", args.backend, "quick" if args.quick else "", args.label) if part
    )
    path = write_results(name, {"generated": generated, "load": load, "results": results, "table": table})
    print(f"\n(results: {path})", file=sys.stderr)


if __name__ == "__main__":
    main()
