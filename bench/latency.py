"""Polls where the network is slow: 600 tags through a proxy that adds 50 ms to every request.

Loopback answers in a fraction of a millisecond and hides what real registries (20-150 ms away)
make of a poll: every request that waits on another (the /v2/ ping, a token, the tag list, the
HEADs of one phase waiting for the last of the phase before) costs a whole round trip while the
request slots idle. This measures how close a poll comes to keeping every slot busy.

    python -m bench.latency                 # 600 tags (120 builds), 3 rounds; part of `make bench-poll`
    python -m bench.latency --quick         # 100 tags, 1 round: a smoke run
    python -m bench.latency --concurrency 8,32 --rtt 0.05

For each concurrency (the registry's `concurrency`, the request slots a poll may take): a first
poll on an emptied database, then an unchanged re-poll, both through tests/support/faultproxy
with `latency=RTT`. Reported per poll: requests (the proxy's count), seconds (the poll's own
wall time, `history.polling.poll`), and the efficiency = achieved requests/s / (concurrency / RTT),
1.0 being every slot busy for the whole poll; and the ratio to a `skopeo list-tags` + `skopeo
inspect --raw` loop over the same tags through the same proxy (a sample, extrapolated).
Results: a summary on stdout and var/bench/latency[-quick].json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from types import SimpleNamespace

# Its own database: bench.poll's tl_bench_poll may be in use by `make bench-poll` at the same time.
os.environ.setdefault(
    "BENCH_POLL_DATABASE_URL", "postgres://postgres:postgres@127.0.0.1:5432/tl_bench_latency"
)

from bench.common import median, write_results
from bench.poll import (
    TAG_SUFFIXES,
    fresh_database,
    push_repositories,
    setup_django,
    skopeo_loop,
    timed_poll,
    watch,
)
from tests.support.registry import start_registry

REPOSITORY = "bench/latency"


def log(message: str) -> None:
    print(f"[bench.latency {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Proxy:
    """tests/support/faultproxy in a process of its own: in this one, its threads would share the
    interpreter lock with the poll's and slow both (a cost no real registry puts on a poll)."""

    def __init__(self, upstream: str, latency: float):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.faultproxy", upstream, "--latency", str(latency)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.host = self.process.stdout.readline().strip()

    def counts(self) -> dict:
        """The requests it saw since the last call (requests, max_concurrent, by_kind)."""
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=10)


def measured_poll(repository, proxy: Proxy, concurrency: int, rtt: float) -> dict:
    proxy.counts()
    timed = timed_poll(repository)
    seen = proxy.counts()
    ideal = seen["requests"] * rtt / concurrency  # every slot busy from the poll's start to its end
    return {
        **seen,
        "seconds": timed.seconds,
        "client_requests": timed.run.requests,
        "ideal_seconds": ideal,
        "efficiency": ideal / timed.seconds,
        "changes": timed.run.changes,
    }


def run_round(registry, proxy: Proxy, tags: list[str], concurrency: int, rtt: float) -> dict:
    from catalog.models import Registry

    fresh_database()
    Registry.objects.create(host=proxy.host, concurrency=concurrency)
    repository = watch(proxy.host, REPOSITORY)
    first = measured_poll(repository, proxy, concurrency, rtt)
    repoll = measured_poll(repository, proxy, concurrency, rtt)
    if repoll["changes"]:
        raise RuntimeError(f"the unchanged re-poll recorded {repoll['changes']} changes")
    return {"first": first, "repoll": repoll}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 tags, one round, a small skopeo sample")
    parser.add_argument("--rtt", type=float, default=0.05, help="seconds the proxy adds per request")
    parser.add_argument(
        "--concurrency", default="8,32", help="comma-separated Registry.concurrency values to poll with"
    )
    parser.add_argument("--rounds", type=int, help="rounds per concurrency (default 3; --quick 1)")
    parser.add_argument("--label", default="", help="a name for this run in the results file")
    args = parser.parse_args(argv)
    builds = 20 if args.quick else 120
    rounds = args.rounds or (1 if args.quick else 3)
    sample = 5 if args.quick else 20
    concurrencies = [int(value) for value in args.concurrency.split(",") if value.strip()]
    setup_django()
    results: dict[str, object] = {
        "command": " ".join(["python -m bench.latency", *(argv if argv is not None else sys.argv[1:])]),
        "label": args.label, "rtt": args.rtt, "builds": builds, "tags": builds * len(TAG_SUFFIXES),
    }  # fmt: skip
    registry = start_registry("none")
    try:
        tags = push_repositories(registry, [REPOSITORY], builds)
        with Proxy(registry.url, args.rtt) as proxy:
            log(f"skopeo over {sample} of {len(tags)} tags through the proxy")
            skopeo = skopeo_loop(SimpleNamespace(host=proxy.host), REPOSITORY, tags, sample, seed=1)
            results["skopeo"] = skopeo
            by_concurrency = {}
            for concurrency in concurrencies:
                rows = []
                for number in range(1, rounds + 1):
                    row = run_round(registry, proxy, tags, concurrency, args.rtt)
                    for kind in ("first", "repoll"):
                        row[kind]["vs_skopeo"] = skopeo["extrapolated_seconds"] / row[kind]["seconds"]
                    rows.append(row)
                    log(
                        f"concurrency {concurrency}, round {number}: "
                        + "; ".join(
                            f"{kind} {row[kind]['requests']} requests in {row[kind]['seconds']:.2f}s "
                            f"({row[kind]['efficiency']:.0%} of {concurrency}/RTT, "
                            f"{row[kind]['vs_skopeo']:.1f}x skopeo)"
                            for kind in ("first", "repoll")
                        )
                    )
                by_concurrency[str(concurrency)] = {
                    "rounds": rows,
                    "median": {
                        kind: {
                            key: median([row[kind][key] for row in rows])
                            for key in ("seconds", "requests", "efficiency", "vs_skopeo", "max_concurrent")
                        }
                        for kind in ("first", "repoll")
                    },
                }
            results["by_concurrency"] = by_concurrency
    finally:
        registry.stop()
    path = write_results(
        "latency" + "-quick" * args.quick + (f"-{args.label}" if args.label else ""), results
    )
    print(report(results))
    log(f"results in {path}")
    return 0


def report(results: dict) -> str:
    skopeo = results["skopeo"]
    lines = [
        f"Polls through a proxy adding {results['rtt'] * 1000:.0f} ms per request, {results['tags']} tags "
        f"({results['builds']} builds); skopeo loop {skopeo['extrapolated_seconds']:.1f}s "
        f"(list {skopeo['list_seconds']:.2f}s + {skopeo['per_tag_seconds']:.3f}s a tag)",
        "| concurrency | poll | requests | seconds | ideal s | efficiency | x skopeo |",
        "|---|---|---|---|---|---|---|",
    ]
    for concurrency, data in results["by_concurrency"].items():
        for kind, label in (("first", "first poll"), ("repoll", "unchanged re-poll")):
            m = data["median"][kind]
            ideal = m["requests"] * results["rtt"] / int(concurrency)
            lines.append(
                f"| {concurrency} | {label} | {m['requests']:.0f} | {m['seconds']:.2f} | {ideal:.2f} "
                f"| {m['efficiency']:.0%} | {m['vs_skopeo']:.1f}x |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
