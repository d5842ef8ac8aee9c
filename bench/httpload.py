"""HTTP load from a process of its own: `concurrency` clients posting one GraphQL request in a loop."""
from __future__ import annotations

import asyncio
import multiprocessing
import time
from dataclasses import dataclass, field

import orjson


@dataclass
class LoadResult:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    first_error: str = ""
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


async def _load(url: str, body: bytes, headers: dict, concurrency: int, duration: float) -> LoadResult:
    import aiohttp

    result = LoadResult()
    headers = {"Content-Type": "application/json", **headers}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.perf_counter() + duration

        async def client() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        answer = await response.read()
                        ok = response.status == 200 and b'"errors"' not in answer
                except aiohttp.ClientError as exc:
                    ok, answer = False, repr(exc).encode()
                result.latencies_ms.append((time.perf_counter() - started) * 1000)
                result.requests += 1
                if not ok:
                    result.errors += 1
                    result.first_error = result.first_error or answer[:300].decode(errors="replace")

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        result.seconds = time.perf_counter() - started
    return result


def _entry(queue, *args) -> None:
    queue.put(asyncio.run(_load(*args)))


def run_load(url: str, query: str, variables: dict | None, *, concurrency: int, duration: float,
             token: str | None = None) -> LoadResult:
    """Load `url` with one query for `duration` seconds from a spawned process."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    body = orjson.dumps({"query": query, "variables": variables or {}})
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    worker = context.Process(target=_entry, args=(queue, url, body, headers, concurrency, duration), daemon=True)
    worker.start()
    result = queue.get(timeout=duration + 120)
    worker.join(10)
    return result
