"""Search at scale: `history.search.lookup` (what the search page, the API and the CLI call).

`python -m bench.search --backend postgres|sqlite [--quick] [--label NAME]`

Queries are sampled from the generated database (bench/generate.py, made or reused first), a
third each from build, platform and config digests, and timed in-process, one at a time:

- prefix8:  `sha256:` + 8 hex, a prefix by the rules (the algorithm anchors it);
- prefix6:  6 bare hex, a prefix (fewer than 8 bare hex are anchored at the colon);
- image_id: the 12 hex `docker images` shows (a config digest's start), bare: a prefix (bare
            hex that starts no digest is then looked for inside digests: see infix12);
- full:     a whole `sha256:` digest, matched exactly;
- infix12:  12 bare hex from the middle of a digest (a prefix search that finds nothing, then
            an infix search);
- nomatch:  12 random bare hex (both searches, finding nothing);
- infix12_scan, nomatch_scan (SQLite with migration 0010's trigram tables only): the same
            queries with the tables ignored (history.digests.Contains.use_trigram_tables), the
            LIKE over every digest that SQLite without FTS5 runs: before and after in one run.

Each kind runs `--queries` different queries per round, `--rounds` rounds, but stops after the
round in which it passed `--budget` seconds (SQLite's infix scans without the trigram tables
take about a second each at full scale, so they report fewer queries and one round). The report
gives p50/p95 per round and their medians, the SQL queries each lookup made, and EXPLAIN
(ANALYZE on PostgreSQL, QUERY PLAN on SQLite) of the lookup's digest queries for one query of
each kind.
Results: var/bench/search-<backend>[-quick][-label].json and a markdown table on stdout.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time

from bench.common import percentile, write_results
from bench.generate import log, prepare

KINDS = ("prefix8", "prefix6", "image_id", "full", "infix12", "nomatch")
SCANS = {"infix12_scan": "infix12", "nomatch_scan": "nomatch"}  # kind: the kind whose queries it runs
# p95 targets from the issues: prefix ≤ 10 ms (PostgreSQL) / 25 ms (SQLite), infix ≤ 100 ms.
TARGETS_MS = {
    "postgres": {"prefix8": 10, "prefix6": 10, "full": 10, "image_id": 10, "infix12": 100, "nomatch": 100},
    "sqlite": {"prefix8": 25, "prefix6": 25, "full": 25, "image_id": 25, "infix12": 100, "nomatch": 100},
}


def kinds() -> tuple[str, ...]:
    """KINDS, and on SQLite with the trigram tables the same infixes without them."""
    from history import digests

    return KINDS + (tuple(SCANS) if digests._trigram_tables_ready() else ())


class _Scan:
    """For a `*_scan` kind: infixes read every digest, as where SQLite has no FTS5 trigrams."""

    def __init__(self, kind: str):
        self.scan = kind in SCANS

    def __enter__(self):
        from history import digests

        self.saved = digests.Contains.use_trigram_tables
        digests.Contains.use_trigram_tables = not self.scan and self.saved

    def __exit__(self, *exc):
        from history import digests

        digests.Contains.use_trigram_tables = self.saved


def sample_queries(count: int, seed: int) -> dict[str, list[tuple[str, str | None]]]:
    """(query, digest it was cut from or None) per kind, `count` each, from random rows."""
    from history.models import Build, Platform

    rng = random.Random(seed)  # noqa: S311 - a sample, not a secret
    top_build = Build.objects.order_by("-pk").values_list("pk", flat=True).first()
    top_platform = Platform.objects.order_by("-pk").values_list("pk", flat=True).first()

    def digests(n: int) -> list[str]:
        """n digests: a third build digests, a third platform digests, a third config digests."""
        third = n // 3 + 1
        build_ids = rng.sample(range(1, top_build + 1), third)
        platform_ids = rng.sample(range(1, top_platform + 1), 2 * third)
        found = list(Build.objects.filter(pk__in=build_ids).values_list("digest", flat=True))
        platforms = list(Platform.objects.filter(pk__in=platform_ids).values_list("digest", "config_digest"))
        found += [digest for digest, _ in platforms[:third]] + [config for _, config in platforms[third:]]
        rng.shuffle(found)
        return found[:n]

    configs = [config for (config,) in Platform.objects.filter(
        pk__in=rng.sample(range(1, top_platform + 1), count)).values_list("config_digest")]  # fmt: skip
    queries = {
        "prefix8": [(f"sha256:{d[7:15]}", d) for d in digests(count)],
        "prefix6": [(d[7:13], d) for d in digests(count)],
        "image_id": [(c[7:19], c) for c in configs],
        "full": [(d, d) for d in digests(count)],
        "infix12": [(d[7 + (start := rng.randrange(8, 52)) : 7 + start + 12], d) for d in digests(count)],
        "nomatch": [(rng.randbytes(6).hex(), None) for _ in range(count)],
    }
    return queries | {scan: queries[kind] for scan, kind in SCANS.items()}


def found_it(result, digest: str | None) -> bool:
    """The build the query was cut from is among the matches (or nothing matched a random query)."""
    if digest is None:
        return not result.matches
    return result.truncated or any(
        digest == match.build.digest
        or any(digest in (p.digest, p.config_digest) for p in match.build.platforms.all())
        for match in result.matches
    )


def run(queries, rounds: int, warmup: int = 20, budget: float = 60.0) -> dict:
    """Time every query of every kind, `rounds` times; a kind whose round took longer than
    `budget` seconds stops there (SQLite's infix scans: about a second each at full scale),
    reporting how many queries it did run."""

    from history.search import lookup

    for kind in kinds():  # warm caches and connections; not measured, and at most 5 s a kind
        started = time.perf_counter()
        with _Scan(kind):
            for text, _ in queries[kind][:warmup]:
                lookup(text)
                if time.perf_counter() - started > 5:
                    break
    results = {}
    for kind in kinds():
        with _Scan(kind):
            results[kind] = _run_kind(queries[kind], rounds, budget)
        log(f"{kind}: p50 {results[kind]['median_p50_ms']} ms, p95 {results[kind]['median_p95_ms']} ms")
    return results


def _run_kind(queries, rounds: int, budget: float) -> dict:
    """One kind's queries, `rounds` times (fewer past `budget` seconds a round)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from history.search import lookup

    rounds_ms, wrong, matched = [], 0, []
    for _ in range(rounds):
        times, started_round = [], time.perf_counter()
        for text, digest in queries:
            started = time.perf_counter()
            result = lookup(text)
            times.append((time.perf_counter() - started) * 1000)
            wrong += not found_it(result, digest)
            matched.append(len(result.matches))
            if time.perf_counter() - started_round > budget:
                break
        rounds_ms.append(times)
        if time.perf_counter() - started_round > budget:
            break
    with CaptureQueriesContext(connection) as captured:
        lookup(queries[0][0])
    return {
        "queries": len(rounds_ms[0]),
        "rounds": len(rounds_ms),
        "p50_ms": [round(statistics.median(times), 2) for times in rounds_ms],
        "p95_ms": [round(percentile(times, 95), 2) for times in rounds_ms],
        "max_ms": round(max(max(times) for times in rounds_ms), 1),
        "median_p50_ms": round(statistics.median(statistics.median(t) for t in rounds_ms), 2),
        "median_p95_ms": round(statistics.median(percentile(t, 95) for t in rounds_ms), 2),
        "sql_per_lookup": len(captured.captured_queries),
        "mean_matches": round(statistics.mean(matched), 2),
        "wrong": wrong,
    }


def explain(queries) -> dict[str, dict[str, str]]:
    """The plans of the lookup's digest queries (the UNIONs of matching build ids: a prefix, and
    for bare hex that starts no digest, an infix) for the first query of each kind."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from history.search import lookup

    plans = {}
    for kind in kinds():
        text = queries[kind][0][0]
        with _Scan(kind), CaptureQueriesContext(connection) as captured:
            lookup(text)
        digest_queries = [query["sql"] for query in captured.captured_queries if " UNION " in query["sql"]]
        plan = []
        for sql in digest_queries:
            with connection.cursor() as cursor:
                if connection.vendor == "postgresql":
                    cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql)
                    plan.append("\n".join(row[0] for row in cursor.fetchall()))
                else:
                    cursor.execute("EXPLAIN QUERY PLAN " + sql)
                    rows = cursor.fetchall()
                    plan.append("\n".join(f"{'  ' * _depth(rows, row)}{row[3]}" for row in rows))
        plans[kind] = {"query": text, "sql": "\n\n".join(digest_queries), "plan": "\n\n".join(plan)}
    return plans


def _depth(rows, row) -> int:
    parents = {r[0]: r[1] for r in rows}
    depth, parent = 0, row[1]
    while parent:
        depth, parent = depth + 1, parents.get(parent, 0)
    return depth


def report(backend: str, results: dict, generated: dict) -> str:
    targets = TARGETS_MS[backend]
    lines = [
        f"Search on {backend}: {generated['rows']['history_build']} builds, "
        f"{generated['rows']['history_platform']} platforms, {generated['rows']['history_tagevent']} events",
        "",
        "| query | n x rounds | p50 ms | p95 ms | p95 per round | SQL/lookup | target p95 |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, row in results.items():
        target = targets.get(kind)
        verdict = (
            "—"
            if target is None
            else f"≤ {target} ms: {'met' if row['median_p95_ms'] <= target else 'MISSED'}"
        )
        lines.append(
            f"| {kind} | {row['queries']} x {row['rounds']} | {row['median_p50_ms']} | "
            f"{row['median_p95_ms']} | "
            f"{', '.join(str(v) for v in row['p95_ms'])} | {row['sql_per_lookup']} | {verdict} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["postgres", "sqlite"], required=True)
    parser.add_argument("--quick", action="store_true", help="small data for a smoke run")
    parser.add_argument("--queries", type=int, default=None, help="queries per kind (default 200; quick 50)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 3; quick 1)")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured queries per kind first")
    parser.add_argument(
        "--budget", type=float, default=60.0, help="seconds per kind and round before a kind stops early"
    )
    parser.add_argument("--label", default="", help="suffix of the results file, e.g. before")
    parser.add_argument("--no-explain", action="store_true")
    args = parser.parse_args(argv)
    generated = prepare(args.backend, args.quick, reuse=True)
    queries = sample_queries(args.queries or (50 if args.quick else 200), seed=7)
    load_before = os.getloadavg()
    results = run(queries, args.rounds or (1 if args.quick else 3), args.warmup, args.budget)
    load = {"before": load_before, "after": os.getloadavg()}  # the machine is shared: say how busy
    plans = {} if args.no_explain else explain(queries)
    table = report(args.backend, results, generated)
    print(table)
    print(f"\nload average (1, 5, 15 min) before {load['before']}, after {load['after']}")
    for kind, plan in plans.items():
        print(f"\n### {kind}: {plan['query']}\n\n```\n{plan['plan']}\n```")
    name = "-".join(
        part for part in ("search", args.backend, "quick" if args.quick else "", args.label) if part
    )
    path = write_results(
        name, {"generated": generated, "load": load, "results": results, "plans": plans, "table": table}
    )
    print(f"\n(results: {path})", file=sys.stderr)
    wrong = sum(row["wrong"] for row in results.values())
    if wrong:
        sys.exit(f"{wrong} lookups did not find the build their query was cut from")


if __name__ == "__main__":
    main()
