"""Where the server's time goes: py-spy samples the running server from outside.

py-spy attaches to the process (it needs ptrace, which root has here) and samples its
Python stacks while it runs (idle time is not sampled, so percentages are of busy time);
`--nonblocking` keeps it from pausing the server. The raw collapsed stacks
are kept in bench/out/; the report shows the functions with the most samples, on their own
(self) and with what they call (inclusive).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Profile:
    name: str
    samples: int = 0
    self_top: list[tuple[str, float]] = field(default_factory=list)
    inclusive_top: list[tuple[str, float]] = field(default_factory=list)
    categories: list[tuple[str, float]] = field(default_factory=list)
    raw_path: str = ""
    error: str = ""


def py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def start(pid: int, seconds: float, out: Path) -> subprocess.Popen | None:
    tool = py_spy()
    if tool is None:
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [tool, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))), "--rate", "100",
         "--format", "raw", "--nonblocking", "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


# Where a sample is spent, by the files on its stack (py-spy names files from their package).
CATEGORIES: dict[str, tuple[str, ...]] = {
    "GraphQL parse + validate": ("graphql/validation/", "graphql/language/parser.py"),
    "GraphQL execution (graphql-core)": ("graphql/execution/",),
    "SQL (Tortoise ORM + asyncpg)": ("tortoise/", "asyncpg/"),
    "WebSocket / socket writes": ("aiohttp/web_ws.py", "aiohttp/_websocket/writer.py", "_SelectorSocketTransport.write"),
    "Redis client": ("redis/",),
}


def _frame_name(frame: str) -> str:
    # "function (package/module.py:123)" -> "function (package/module.py)"
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0].rstrip(')')})"


def _in_category(frames: list[str], markers: tuple[str, ...]) -> bool:
    return any(marker in frame for frame in frames for marker in markers)


def summarize(name: str, raw: Path, top: int = 12) -> Profile:
    profile = Profile(name=name, raw_path=str(raw))
    if not raw.exists():
        profile.error = "no samples written"
        return profile
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_frame_name(f) for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        profile.samples += n
        self_counts[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
        for category, markers in CATEGORIES.items():
            if _in_category(frames, markers):
                categories[category] += n
    if profile.samples:
        profile.self_top = [(f, c / profile.samples * 100) for f, c in self_counts.most_common(top)]
        profile.inclusive_top = [(f, c / profile.samples * 100) for f, c in inclusive.most_common(top * 4)]
        profile.categories = [(c, categories[c] / profile.samples * 100) for c in CATEGORIES]
    return profile


def finish(process: subprocess.Popen | None, name: str, raw: Path) -> Profile:
    if process is None:
        return Profile(name=name, error="py-spy is not installed (pip install py-spy, or `make bench`)")
    _, stderr = process.communicate(timeout=120)
    profile = summarize(name, raw)
    if process.returncode and not profile.samples:
        profile.error = (stderr or b"").decode(errors="replace").strip()[-300:] or f"py-spy exited {process.returncode}"
    return profile
