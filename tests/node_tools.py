"""Node and the npm test tools of tests/js (graphql-http's audit, graphql-ws, graphql-sse,
Apollo Client, graphql-inspector), installed from the npm registry with `npm ci` by the tests
that use them, never by the app. Without Node they skip with a message, except in CI (CI=true),
where Node is there and a skip would hide a failure."""
from __future__ import annotations

import asyncio
import json
import os
import pathlib
import shutil
import subprocess

import pytest

JS = pathlib.Path(__file__).resolve().parent / "js"


@pytest.fixture(scope="session")
def node() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        if os.environ.get("CI"):
            pytest.fail("Node and npm are needed for tests/js in CI")
        pytest.skip("Node and npm are not installed: the third-party JavaScript client tests need them")
    installed = JS / "node_modules" / ".package-lock.json"
    lock = JS / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=JS, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
    return node


async def run_node(node: str, script: str, *args: str, timeout: float = 120, env: dict | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        node, str(JS / script), *args, cwd=JS, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return process.returncode, out.decode(), err.decode()


def json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]
