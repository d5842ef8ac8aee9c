"""`python -m bench` (or `make bench`): run every measurement, side by side, and write bench/REPORT.md.

Servers under test are real processes (`livecart serve` through bench.served, PostGraphile's
CLI); the load comes from other processes (bench.loadgen, bench.httpload). Each comparison
runs in the same run, one after the other, because absolute figures drift between runs.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import os
import shlex
import sys
from pathlib import Path

from bench import fanout, flashsale, issue20, machine, polling, profile, queries
from bench.procs import Server, livecart_server, raise_open_files_limit
from bench.report import DEFAULT, SHARED, Results, write
from bench.seed import seed
from livecart.server.settings import Settings

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
# The one server setting the baseline needs: subscription resolvers executing per subscriber,
# as strawberry does by default (see the report's "Set-up" for what it turns off).
BASELINE_SETTING = "subscription_sharing"
# Load from one address: the server's per-address limits would refuse the bench's own clients.
LOAD_TEST_ENV = {"RATE_LIMITS": "off", "WEBSOCKET_CONNECTIONS_PER_ADDRESS": "1000000"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/livecart_bench"),
        help="PostgreSQL database the bench resets and fills (created when missing)")
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"),
                        help="Redis for the broker ('' for the in-process broker)")
    parser.add_argument("--port-base", type=int, default=int(os.environ.get("BENCH_PORT_BASE", "18600")))
    parser.add_argument("--sizes", default="1000,5000,10000", help="subscriber counts, comma-separated")
    parser.add_argument("--comments", type=int, default=10, help="comments per fan-out window (one a second)")
    parser.add_argument("--baseline-comments", type=int, default=5, help="comments per window on the default path")
    parser.add_argument("--burst", type=int, default=100_000,
                        help="deliveries the most-deliveries burst aims at (3 to 20 comments)")
    parser.add_argument("--processes", type=int, default=4, help="subscriber worker processes")
    parser.add_argument("--query-seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--buyers", type=int, default=200)
    parser.add_argument("--sale-stock", type=int, default=100)
    parser.add_argument("--drain-timeout", type=float, default=600.0,
                        help="the longest wait for every delivery (it also stops after 20 s without one)")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--quick", action="store_true", help="tiny sizes to try the harness (200 subscribers)")
    parser.add_argument("--issue20-only", action="store_true",
                        help="only issue 20's section (to try it; with --out elsewhere: the other sections say not measured)")
    parser.add_argument("--out", default=str(HERE / "REPORT.md"))
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.comments, args.baseline_comments, args.burst = "200", 3, 3, 1000
        args.processes, args.query_seconds = 2, 3.0
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    return args


def baseline_available() -> bool:
    return BASELINE_SETTING in {f.name for f in dataclasses.fields(Settings)}


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


async def run_fanouts(args, results: Results, servers: dict[str, Server], seeded) -> None:
    largest = max(args.sizes)
    for size in args.sizes:
        for path, server in servers.items():
            comments = args.comments if path == SHARED else args.baseline_comments

            async def with_profile(srv, measure, path=path, size=size):
                raw = OUT / f"profile-fanout-{path.replace(' ', '-')}-{size}.txt"
                spy = profile.start(srv.pid, comments + 2, raw)
                await measure()
                results.profiles.append(profile.finish(
                    spy, f"Server during fan-out: {path}, {size:,} subscribers, 1 comment/s", raw))

            during = with_profile if size == largest and not args.no_profile else None
            print(f"bench: fan-out {path} x {size:,}", flush=True)
            try:
                run = await fanout.fanout(
                    server, seeded, path, size, comments=comments, interval=1.0, processes=args.processes,
                    burst_comments=max(3, min(20, args.burst // size)) if path == SHARED and size == largest else 0,
                    drain_timeout=args.drain_timeout, during=during)
            except Exception as exc:  # noqa: BLE001 - one failed size is a row in the report, not the end
                run = fanout.FanoutRun(path=path, subscribers=size, note=f"failed: {type(exc).__name__}: {exc}"[:300])
            results.fanout.append(run)
            if run.steady:
                print(f"bench:   p50 {run.steady.p50_ms} ms, p99 {run.steady.p99_ms} ms,"
                      f" {run.steady.delivered}/{run.steady.expected} delivered,"
                      f" {run.steady.cpu_us_per_message} µs CPU/message", flush=True)


async def keep_commenting(url: str, seeded, stop: asyncio.Event) -> int:
    import aiohttp

    from bench.fanout import CommentPoster
    from bench.gql import HttpGraphQL

    posted = 0
    async with aiohttp.ClientSession() as session:
        poster = CommentPoster(HttpGraphQL(session, f"{url}/graphql"), seeded.stream_id, seeded.commenter_tokens)
        while not stop.is_set():
            await poster.post()
            posted += 1
            try:
                await asyncio.wait_for(stop.wait(), queries.WRITE_INTERVAL)
            except TimeoutError:
                pass
    return posted


async def measure_query(args, server_name: str, url: str, name: str, query: str, seeded, *,
                        label: str | None = None, writes_to: str | None = None) -> list:
    """One query against one server; with `writes_to`, comments are posted there meanwhile."""
    stop = asyncio.Event()
    writer = asyncio.create_task(keep_commenting(writes_to, seeded, stop)) if writes_to else None
    try:
        rows = await asyncio.to_thread(queries.measure, server_name, f"{url}/graphql", {name: query},
                                       seeded.stream_id, args.concurrency, args.query_seconds)
    finally:
        stop.set()
        if writer is not None:
            await writer
    for row in rows:
        row.server = label or server_name
    return rows


async def run_queries(args, results: Results, ours: Server, unshared: Server, seeded) -> None:
    try:
        results.postgraphile = queries.install_postgraphile()
    except Exception as exc:  # noqa: BLE001
        results.notes.append(f"PostGraphile could not be installed: {exc}")
        results.queries = [queries.QueryRow(q, "postgraphile", note="not installed") for q in queries.POSTGRAPHILE]
    pg = None
    if results.postgraphile:
        pg = queries.postgraphile_server(args.port_base + 10, args.database_url, OUT).start()
    try:
        if pg is not None:
            mismatch = await queries.same_answers(f"{ours.url}/graphql", f"{pg.url}/graphql", seeded.stream_id)
            results.query_check = mismatch or "checked: the same streams, products and comments"
            if mismatch:
                results.notes.append(f"The two servers' answers differ: {mismatch}")
        # As served (ten requests in a row: one execution, then shared), and what one execution costs.
        statements = {
            "livecart": await queries.statements_per_request(ours.url, seeded.stream_id),
            f"livecart, {queries.NO_SHARED_RESULTS}": await queries.statements_per_request(unshared.url, seeded.stream_id),
        }
        for name, query in queries.LIVECART.items():
            print(f"bench: query {name}", flush=True)
            rows = await measure_query(args, "livecart", ours.url, name, query, seeded)
            rows += await measure_query(args, "livecart", ours.url, name, query, seeded,
                                        label=f"livecart, {queries.UNDER_WRITES}", writes_to=ours.url)
            rows += await measure_query(args, "livecart", unshared.url, name, query, seeded,
                                        label=f"livecart, {queries.NO_SHARED_RESULTS}")
            for row in rows:
                row.statements = statements.get(row.server, {}).get(name)
            results.queries += rows
            if pg is not None:
                pg_query = queries.POSTGRAPHILE[name]
                results.queries += await measure_query(args, "postgraphile", pg.url, name, pg_query, seeded)
                results.queries += await measure_query(args, "postgraphile", pg.url, name, pg_query, seeded,
                                                       label=f"postgraphile, {queries.UNDER_WRITES}", writes_to=ours.url)
        if not args.no_profile:
            name = "liveStreams"
            raw = OUT / "profile-query-liveStreams.txt"
            spy = profile.start(unshared.pid, min(args.query_seconds, 5), raw)
            await asyncio.to_thread(queries.measure, "livecart", f"{unshared.url}/graphql",
                                    {name: queries.LIVECART[name]}, seeded.stream_id, args.concurrency,
                                    min(args.query_seconds, 5))
            results.profiles.append(profile.finish(
                spy, f"livecart serving `{name}` at {args.concurrency} clients, {queries.NO_SHARED_RESULTS}", raw))
    finally:
        if pg is not None:
            pg.stop()


async def main(argv: list[str] | None = None) -> Results:
    args = parse_args(argv)
    OUT.mkdir(exist_ok=True)
    limit = raise_open_files_limit()
    results = Results(command="python -m bench " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
                      started=now())
    results.machine = machine.describe(await machine.server_versions(args.database_url, args.redis_url or None))
    results.config = [
        ("database", args.database_url.rsplit("@", 1)[-1]),
        ("broker", f"Redis {args.redis_url}" if args.redis_url else "in-process"),
        ("fan-out sizes", ", ".join(f"{s:,}" for s in args.sizes)),
        ("comments per window", f"{args.comments} (default path: {args.baseline_comments}), one a second"),
        ("subscriber processes", str(args.processes)),
        ("open files limit", str(limit)),
        ("query load", f"{args.concurrency} clients, {args.query_seconds:g} s per query and server"),
        ("flash sale", f"{args.buyers} buyers, stock {args.sale_stock}"),
        ("server settings", ", ".join(f"{k}={v}" for k, v in LOAD_TEST_ENV.items())),
    ]
    if args.issue20_only:
        return await run_issue20(args, results)
    print(f"bench: seeding {args.database_url.rsplit('@', 1)[-1]}", flush=True)
    seeded = await seed(args.database_url, buyers=args.buyers, sale_stock=args.sale_stock)

    # Fan-out servers execute every query (shared query results off): the polls measured on them
    # below cost what one execution costs; subscriptions do not go through the query cache at all.
    fanout_env = {**LOAD_TEST_ENV, "QUERY_CACHE_SECONDS": "0"}
    servers = {SHARED: livecart_server("livecart", args.port_base + 1, args.database_url, args.redis_url, OUT,
                                       fanout_env)}
    if baseline_available():
        servers[DEFAULT] = livecart_server("livecart-default-path", args.port_base + 2, args.database_url,
                                           args.redis_url, OUT, {**fanout_env, BASELINE_SETTING.upper(): "off"})
        results.switch = (f"The baseline server runs with `{BASELINE_SETTING.upper()}=off`: each subscriber executes"
                          " its own selection set and reads its own rows for every event (strawberry's default"
                          " path); everything else is the same `livecart serve`.")
    else:
        results.notes.append(f"Strawberry's default path was not measured: the server has no `{BASELINE_SETTING}`"
                             " setting yet to switch its shared subscription execution off.")
    started = []
    try:
        for server in servers.values():
            started.append(server.start())
        ours = servers[SHARED]
        print("bench: statements per poll", flush=True)
        results.poll_cost = await polling.measure_poll_cost(
            ours.url, seeded.stream_id, seeded.seller_token, seeded.commenter_tokens[-1])
        await run_fanouts(args, results, servers, seeded)
        for server in started:
            server.stop()
        # Fresh servers from here on: memory freed by the fan-outs would hide what idle subscribers
        # cost, and a large heap left behind would slow the queries with garbage collection.
        print(f"bench: idle memory x {max(args.sizes):,}", flush=True)
        memory_server = livecart_server("livecart-memory", args.port_base + 3, args.database_url, args.redis_url,
                                        OUT, LOAD_TEST_ENV)
        started.append(memory_server.start())
        results.memory = await fanout.fanout(memory_server, seeded, SHARED, max(args.sizes), comments=0,
                                             interval=1.0, processes=args.processes,
                                             drain_timeout=args.drain_timeout)
        memory_server.stop()
        results.issue20.memory_load = os.getloadavg()[0]
        print(f"bench: idle memory on a bare aiohttp WebSocket server x {max(args.sizes):,}", flush=True)
        try:  # issue 20's floor, right after livecart's idle subscribers: the same size, the same clients
            results.issue20.bare = await issue20.bare_memory(args.port_base + 19, OUT, max(args.sizes), args.processes)
        except Exception as exc:  # noqa: BLE001
            results.issue20.notes.append(f"The bare WebSocket server could not be measured: {type(exc).__name__}: {exc}"[:300])
        ours = livecart_server("livecart-queries", args.port_base + 4, args.database_url, args.redis_url, OUT,
                               LOAD_TEST_ENV)
        unshared = livecart_server("livecart-queries-unshared", args.port_base + 5, args.database_url,
                                   args.redis_url, OUT, {**LOAD_TEST_ENV, "QUERY_CACHE_SECONDS": "0"})
        started += [ours.start(), unshared.start()]
        await run_queries(args, results, ours, unshared, seeded)
        print("bench: flash sale", flush=True)
        try:
            results.flash_sale = await flashsale.flash_sale(ours.url, args.database_url, seeded.sale_product_id,
                                                            seeded.stream_id, seeded.buyer_tokens)
        except Exception as exc:  # noqa: BLE001
            results.notes.append(f"The flash sale could not run: {type(exc).__name__}: {exc}"[:300])
    finally:
        for server in started:
            server.stop()
    return await run_issue20(args, results)


async def run_issue20(args, results: Results) -> Results:
    """Issue 20's rows, last: they seed a database of their own (20 streams) over the one above."""
    try:
        await issue20.run(args, results, LOAD_TEST_ENV, OUT)
    except Exception as exc:  # noqa: BLE001 - the rest of the report still gets written
        results.issue20.notes.append(f"Issue 20's measurements stopped: {type(exc).__name__}: {exc}"[:300])
    results.finished = now()
    results.machine.append(("load average (1, 5, 15 min) at the end", machine.load_average()))
    write(results, Path(args.out))
    print(f"bench: wrote {args.out}", flush=True)
    return results


if __name__ == "__main__":
    asyncio.run(main())
