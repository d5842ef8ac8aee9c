"""The machine a report was measured on: absolute figures only mean something next to it."""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys


def _first_line(command: list[str]) -> str:
    if not shutil.which(command[0]):
        return "not installed"
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unknown ({exc})"
    return out.splitlines()[0] if out else "unknown"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> str:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


async def server_versions(database_url: str, redis_url: str | None) -> dict[str, str]:
    """The versions of the PostgreSQL and Redis servers actually used, asked over the wire."""
    import asyncpg
    import redis.asyncio as redis

    versions = {}
    conn = await asyncpg.connect(database_url)
    try:
        versions["PostgreSQL"] = (await conn.fetchval("SHOW server_version")).split()[0]
    finally:
        await conn.close()
    if redis_url:
        client = redis.from_url(redis_url)
        try:
            versions["Redis"] = (await client.info("server"))["redis_version"]
        finally:
            await client.aclose()
    return versions


def load_average() -> str:
    """The machine is shared: a busy one at the start of a run says the figures are pessimistic."""
    try:
        with open("/proc/loadavg") as loadavg:
            return " ".join(loadavg.read().split()[:3])
    except OSError:
        return "unknown"


def describe(versions: dict[str, str]) -> list[tuple[str, str]]:
    from importlib.metadata import version

    rows = [
        ("nproc", str(os.cpu_count())),
        ("CPU model", cpu_model()),
        ("memory", memory_gib()),
        ("kernel", platform.release()),
        ("load average (1, 5, 15 min) at the start", load_average()),
        ("Python", sys.version.split()[0]),
    ]
    rows += list(versions.items())
    rows += [
        ("node", _first_line(["node", "--version"])),
        ("strawberry-graphql", version("strawberry-graphql")),
        ("aiohttp", version("aiohttp")),
        ("tortoise-orm", version("tortoise-orm")),
    ]
    return rows
