"""Polls where the network is slow: 600 tags through a relay that adds 50 ms to every request.

Loopback answers in a fraction of a millisecond and hides what real registries (20-150 ms away)
make of a poll: every request that waits on another (the /v2/ ping, a token, the tag list, the
HEADs of one phase waiting for the last of the phase before) costs a whole round trip while the
request slots idle. This measures how close a poll comes to keeping every slot busy.

    python -m bench.latency                 # 600 tags (120 builds), 3 rounds; part of `make bench-poll`
    python -m bench.latency --quick         # 100 tags, 1 round: a smoke run
    python -m bench.latency --concurrency 8,32 --rtt 0.05

For each concurrency (the registry's `concurrency`, the request slots a poll may take): a first
poll on an emptied database, then an unchanged re-poll, both through tests/support/slownet (a
relay in its own process that holds every request RTT seconds). Reported per poll: requests (the
poll's own count, PollRun.requests), seconds (its wall time, `history.polling.poll`), and the
efficiency = achieved requests/s / (concurrency / RTT), 1.0 being every slot busy for the whole
poll; and the ratio to a `skopeo list-tags` + `skopeo inspect --raw` loop over the same tags
through the same relay (a sample, extrapolated).
Results: a summary on stdout and var/bench/latency[-quick].json.
"""

from __future__ import annotations

import argparse
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


class SlowNetwork:
    """tests/support/slownet in a process of its own, in front of the registry: every request
    held RTT seconds on its way, as a network would (and no interpreter lock shared with the poll)."""

    def __init__(self, upstream: str, rtt: float):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.slownet", upstream, "--delay", str(rtt)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.host = self.process.stdout.readline().strip()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


class Exchanges:
    """When each request of the client was on the wire (one attempt: sent, answered, read), so
    the loss splits in two: slots left idle (the poll's pipeline) and requests taking longer than
    the RTT (the registry's own time, and a client that waits for a CPU on a busy machine)."""

    def __init__(self) -> None:
        from catalog.oci import client

        self.spans: list[float] = []
        original = client.RegistryClient._exchange
        spans = self.spans

        def exchange(self, *args, **kwargs):
            started = time.perf_counter()
            try:
                return original(self, *args, **kwargs)
            finally:
                spans.append(time.perf_counter() - started)  # list.append is atomic

        client.RegistryClient._exchange = exchange


def measured_poll(repository, concurrency: int, rtt: float, exchanges: Exchanges) -> dict:
    exchanges.spans.clear()
    timed = timed_poll(repository)
    run = timed.run
    busy = sum(exchanges.spans)
    ideal = run.requests * rtt / concurrency  # every slot busy from the poll's start to its end
    return {
        "seconds": timed.seconds,
        "requests": run.requests,
        "by_kind": {"HEAD manifest": run.heads, "GET manifest": run.gets, "GET blob": run.blob_gets,
                    "other (ping, token, tag list)": run.requests - run.heads - run.gets - run.blob_gets},
        "ideal_seconds": ideal,
        "efficiency": ideal / timed.seconds,
        # efficiency = slots_busy x RTT / mean_request
        "slots_busy": busy / (concurrency * timed.seconds),
        "mean_request": busy / max(1, len(exchanges.spans)),
        "changes": run.changes,
    }  # fmt: skip


def run_round(proxy: SlowNetwork, concurrency: int, rtt: float, exchanges: Exchanges) -> dict:
    from catalog.models import Registry

    fresh_database()
    Registry.objects.create(host=proxy.host, concurrency=concurrency)
    repository = watch(proxy.host, REPOSITORY)
    first = measured_poll(repository, concurrency, rtt, exchanges)
    repoll = measured_poll(repository, concurrency, rtt, exchanges)
    if repoll["changes"]:
        raise RuntimeError(f"the unchanged re-poll recorded {repoll['changes']} changes")
    return {"first": first, "repoll": repoll}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 tags, one round, a small skopeo sample")
    parser.add_argument("--rtt", type=float, default=0.05, help="seconds the relay adds per request")
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
    exchanges = Exchanges()
    results: dict[str, object] = {
        "command": " ".join(["python -m bench.latency", *(argv if argv is not None else sys.argv[1:])]),
        "label": args.label, "rtt": args.rtt, "builds": builds, "tags": builds * len(TAG_SUFFIXES),
    }  # fmt: skip
    registry = start_registry("none")
    try:
        tags = push_repositories(registry, [REPOSITORY], builds)
        with SlowNetwork(registry.host, args.rtt) as proxy:
            log(f"skopeo over {sample} of {len(tags)} tags through the relay")
            skopeo = skopeo_loop(SimpleNamespace(host=proxy.host), REPOSITORY, tags, sample, seed=1)
            results["skopeo"] = skopeo
            by_concurrency = {}
            for concurrency in concurrencies:
                rows = []
                for number in range(1, rounds + 1):
                    row = run_round(proxy, concurrency, args.rtt, exchanges)
                    for kind in ("first", "repoll"):
                        row[kind]["vs_skopeo"] = skopeo["extrapolated_seconds"] / row[kind]["seconds"]
                    rows.append(row)
                    log(
                        f"concurrency {concurrency}, round {number}: "
                        + "; ".join(
                            f"{kind} {row[kind]['requests']} requests in {row[kind]['seconds']:.2f}s "
                            f"({row[kind]['efficiency']:.0%} of {concurrency}/RTT, slots "
                            f"{row[kind]['slots_busy']:.0%} busy, "
                            f"{row[kind]['mean_request'] * 1000:.0f} ms a request, "
                            f"{row[kind]['vs_skopeo']:.1f}x skopeo)"
                            for kind in ("first", "repoll")
                        )
                    )
                by_concurrency[str(concurrency)] = {
                    "rounds": rows,
                    "median": {
                        kind: {
                            key: median([row[kind][key] for row in rows])
                            for key in (
                                "seconds",
                                "requests",
                                "efficiency",
                                "slots_busy",
                                "mean_request",
                                "vs_skopeo",
                            )
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
        f"Polls through a relay adding {results['rtt'] * 1000:.0f} ms per request, {results['tags']} tags "
        f"({results['builds']} builds); skopeo loop {skopeo['extrapolated_seconds']:.1f}s "
        f"(list {skopeo['list_seconds']:.2f}s + {skopeo['per_tag_seconds']:.3f}s a tag)",
        "| concurrency | poll | requests | seconds | ideal s | efficiency | slots busy | mean request "
        "| x skopeo |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for concurrency, data in results["by_concurrency"].items():
        for kind, label in (("first", "first poll"), ("repoll", "unchanged re-poll")):
            m = data["median"][kind]
            ideal = m["requests"] * results["rtt"] / int(concurrency)
            lines.append(
                f"| {concurrency} | {label} | {m['requests']:.0f} | {m['seconds']:.2f} | {ideal:.2f} "
                f"| {m['efficiency']:.0%} | {m['slots_busy']:.0%} | {m['mean_request'] * 1000:.0f} ms "
                f"| {m['vs_skopeo']:.1f}x |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
