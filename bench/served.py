"""`livecart serve` exactly as shipped, plus a counter of the SQL statements it sends.

The bench's polling-against-push comparison needs the statements the server itself
issues; PostgreSQL's pg_stat_statements is not loaded on every machine, so the count
comes from Tortoise's own statement log (tortoise.db_client at DEBUG). The counting
handler never formats a record, so it costs a few microseconds per statement. The
counts are served at /bench/statements. It also measures how long the event loop is held
(LoopBlocks, served at /bench/loop with BENCH_LOOP_BLOCKS=on). Everything else is `livecart serve`: this module wraps
server.app.create_app and then runs the real CLI.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
import time
from collections import Counter

from aiohttp import web

STATEMENTS: Counter[str] = Counter()


class CountStatements(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        query = record.args[0] if isinstance(record.args, tuple) and record.args else record.msg
        if not isinstance(query, str):
            return
        verb = query.lstrip().split(None, 1)[0].upper() if query.strip() else ""
        if verb in ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH"):
            STATEMENTS[verb.lower()] += 1
            STATEMENTS["total"] += 1


async def statements(request: web.Request) -> web.Response:
    return web.json_response(dict(STATEMENTS))


class LoopBlocks:
    """How long the event loop is held: a task asks to wake every INTERVAL and records, for each
    wake-up, how late it came (wall) and how much CPU the loop's thread spent meanwhile. A request
    (a /healthz) that arrives while the loop is held waits that long; the CPU figure is the block's
    own length, which a machine shared with other jobs stretches in wall time but does not change.
    200 wake-ups a second, a few µs each; only with BENCH_LOOP_BLOCKS=on (bench.cost sets it)."""

    INTERVAL = 0.005

    def __init__(self) -> None:
        self.lag_ms: list[float] = []
        self.cpu_ms: list[float] = []
        self.gc_cpu_ms: list[tuple[int, float]] = []  # (generation, CPU ms) of each garbage collection
        self._gc_started = 0.0
        self.gc_collected = 0  # objects freed by collections: garbage in reference cycles

    def on_gc(self, phase: str, info: dict) -> None:
        """gc.callbacks: a collection is a block of its own, inside whatever callback allocated last."""
        if phase == "start":
            self._gc_started = time.thread_time()
        else:
            self.gc_cpu_ms.append((info["generation"], (time.thread_time() - self._gc_started) * 1000))
            self.gc_collected += info["collected"]

    async def watch(self) -> None:
        while True:
            wall, cpu = time.perf_counter(), time.thread_time()
            await asyncio.sleep(self.INTERVAL)
            self.lag_ms.append((time.perf_counter() - wall - self.INTERVAL) * 1000)
            self.cpu_ms.append((time.thread_time() - cpu) * 1000)

    def summary(self) -> dict[str, float]:
        def at(values: list[float], share: float) -> float:
            ordered = sorted(values)
            return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else 0.0

        return {
            "samples": len(self.cpu_ms),
            "cpu_p99_ms": at(self.cpu_ms, 0.99), "cpu_max_ms": max(self.cpu_ms, default=0.0),
            "lag_p99_ms": at(self.lag_ms, 0.99), "lag_max_ms": max(self.lag_ms, default=0.0),
            "gc_collections": len(self.gc_cpu_ms),
            "gc_full_collections": sum(1 for generation, _ in self.gc_cpu_ms if generation == 2),
            "gc_cpu_ms": sum(ms for _, ms in self.gc_cpu_ms),
            "gc_max_ms": max((ms for _, ms in self.gc_cpu_ms), default=0.0),
            "gc_heap_objects": len(gc.get_objects()),
            "gc_collected": self.gc_collected,
            "gc_by_generation": {
                generation: {"count": len(times), "cpu_ms": sum(times), "max_ms": max(times, default=0.0)}
                for generation in (0, 1, 2)
                for times in [[ms for g, ms in self.gc_cpu_ms if g == generation]]
            },  # what a full collection walks (gc.freeze()'s are not)
        }

    def reset(self) -> None:
        self.lag_ms.clear()
        self.cpu_ms.clear()
        self.gc_cpu_ms.clear()
        self.gc_collected = 0


LOOP_BLOCKS = LoopBlocks()


async def loop_blocks(request: web.Request) -> web.Response:
    """The loop's blocks since the last `?reset` (which starts a new count)."""
    summary = LOOP_BLOCKS.summary()
    if "reset" in request.query:
        LOOP_BLOCKS.reset()
    return web.json_response(summary)


async def watch_loop(app: web.Application):
    task = asyncio.get_running_loop().create_task(LOOP_BLOCKS.watch())
    gc.callbacks.append(LOOP_BLOCKS.on_gc)
    yield
    gc.callbacks.remove(LOOP_BLOCKS.on_gc)
    task.cancel()


def install_counter() -> None:
    logger = logging.getLogger("tortoise.db_client")
    logger.addHandler(CountStatements(logging.DEBUG))
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # keep every statement out of the server's log


def main(argv: list[str]) -> None:
    import livecart.server.app
    from livecart.server import cli

    real_create_app = livecart.server.app.create_app

    def create_app(settings):
        app = real_create_app(settings)
        app.router.add_get("/bench/statements", statements)
        if os.environ.get("BENCH_LOOP_BLOCKS") == "on":  # bench.cost: its wake-ups would add to other benches' CPU
            app.router.add_get("/bench/loop", loop_blocks)
            app.cleanup_ctx.append(watch_loop)
        return app

    livecart.server.app.create_app = create_app
    install_counter()
    cli.main(["serve", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
