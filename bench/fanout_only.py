"""`python -m bench.fanout_only`: the fan-out measurement of `make bench` alone (livecart's shared
path, no strawberry baseline, no queries), for comparing two commits one right after the other.

It uses the same server (`livecart serve` through bench.served, shared query results off), the
same subscriber fleet and the same steady window as bench/__main__.py's fan-out section, and prints
one line per size: p50/p99 delivery latency and the server's CPU per delivered message. Copy it into
an older checkout to measure that one the same way (it imports only what both have).
"""
from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from bench import fanout
from bench.procs import livecart_server, raise_open_files_limit
from bench.report import SHARED
from bench.seed import seed

HERE = Path(__file__).resolve().parent
ENV = {"RATE_LIMITS": "off", "WEBSOCKET_CONNECTIONS_PER_ADDRESS": "1000000", "QUERY_CACHE_SECONDS": "0"}


async def main(args: argparse.Namespace) -> None:
    raise_open_files_limit()
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    seeded = await seed(args.database_url, buyers=10, sale_stock=10)
    for repeat in range(args.repeats):
        for size in args.sizes:
            server = livecart_server("livecart", args.port, args.database_url, args.redis_url, out, ENV)
            server.start()
            try:
                run = await fanout.fanout(server, seeded, SHARED, size, comments=args.comments, interval=1.0,
                                          processes=args.processes, drain_timeout=120.0)
            finally:
                server.stop()
            steady = run.steady
            if steady is None:
                print(f"fan-out {size:,} (round {repeat + 1}): failed {run.note}", flush=True)
                continue
            print(f"fan-out {size:,} (round {repeat + 1}): p50 {steady.p50_ms:.1f} ms, p99 {steady.p99_ms:.1f} ms, "
                  f"{steady.delivered}/{steady.expected} delivered, {steady.cpu_us_per_message:.1f} µs CPU/message, "
                  f"load {os.getloadavg()[0]:.2f}", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout_only", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/livecart_bench"))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("BENCH_FANOUT_PORT", "18681")))
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--comments", type=int, default=10)
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
