import os
import pathlib
import subprocess
import sys

import pytest

from tests.conftest import BACKENDS

ROOT = pathlib.Path(__file__).resolve().parent.parent


def livecart(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "livecart.server.cli", *args], cwd=ROOT, env={**os.environ, **env},
        capture_output=True, text=True, timeout=120,
    )


@pytest.fixture
def database_env(backend, tmp_path, request) -> dict:
    if backend == "embedded":
        return {"DATABASE_URL": f"sqlite://{tmp_path}/cli.sqlite3"}
    request.getfixturevalue("postgres_migrated")
    from tests.conftest import _truncate_postgres, run_blocking

    run_blocking(_truncate_postgres(os.environ["TEST_DATABASE_URL"]))
    return {"DATABASE_URL": os.environ["TEST_DATABASE_URL"]}


def test_migrate_then_demo_data_twice_is_idempotent(database_env):
    assert livecart("migrate", env=database_env).returncode == 0
    first = livecart("demo-data", env=database_env)
    assert first.returncode == 0, first.stderr
    assert "demo-seller" in first.stdout and "livecart-demo" in first.stdout
    second = livecart("demo-data", env=database_env)
    assert second.returncode == 0, second.stderr

    import asyncio

    from tests.conftest import run_blocking

    async def count() -> tuple[int, int, int]:
        from livecart.models import LiveStream, Product, User
        from livecart.server import db
        from livecart.server.settings import Settings

        await db.open_database(Settings(database_url=database_env["DATABASE_URL"]))
        try:
            return await User.all().count(), await Product.all().count(), await LiveStream.filter(status="live").count()
        finally:
            await db.close_database()

    assert run_blocking(count()) == (4, 3, 1)
    assert asyncio  # imported for run_blocking's coroutine


def test_export_schema_writes_the_sdl(tmp_path):
    out = tmp_path / "schema.graphql"
    result = livecart("export-schema", str(out), env={})
    assert result.returncode == 0, result.stderr
    assert "type Query" in out.read_text() and "liveStreams" in out.read_text()


test_migrate_then_demo_data_twice_is_idempotent = pytest.mark.parametrize("backend", BACKENDS)(
    test_migrate_then_demo_data_twice_is_idempotent
)
