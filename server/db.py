"""Tortoise configuration, start-up and migrations."""
from __future__ import annotations

import pathlib
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tortoise import Tortoise, fields
from tortoise.migrations import executor as migration_executor
from tortoise.migrations.recorder import MigrationRecorder
from tortoise.models import Model

from livecart.models import MODEL_MODULES
from livecart.server.settings import Settings

APP_LABEL = "models"
MIGRATIONS_MODULE = "livecart.models.migrations"
# asyncpg waits 60 s by default for a new connection: a database host that accepts but never
# answers would hold every request that needs a fresh connection that long. Requests must fail
# fast (SERVICE_UNAVAILABLE) instead; `?timeout=` in DATABASE_URL overrides it.
CONNECT_TIMEOUT_SECONDS = 5


def database_url(settings: Settings, *, bounded: bool = True) -> str:
    """The URL Tortoise understands, with the pool sized (and its connect timeout set) for PostgreSQL.
    `bounded`: every statement is given DATABASE_STATEMENT_TIMEOUT_SECONDS (asyncpg's command
    timeout, kept by the client, so it also ends the wait on a server that stopped answering
    mid-statement); migrations are not bounded, an index build may take its time."""
    url = settings.database_url
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = url[len("sqlite://"):]
        if path != ":memory:":
            pathlib.Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        return url
    query = dict(parse_qsl(parts.query))
    query.setdefault("minsize", "1")
    query.setdefault("maxsize", str(settings.database_pool_size))
    query.setdefault("timeout", str(CONNECT_TIMEOUT_SECONDS))
    if bounded and settings.database_statement_timeout_seconds:
        query.setdefault("command_timeout", str(settings.database_statement_timeout_seconds))
    return urlunsplit(("postgres", parts.netloc, parts.path, urlencode(query), ""))


def tortoise_config(settings: Settings, *, bounded: bool = True) -> dict:
    # Named by dialect: Tortoise caches compiled statements per connection name, so a
    # process that meets both databases (the test suite) must not share one name.
    connection = "sqlite" if settings.is_sqlite else "postgres"
    return {
        "connections": {connection: database_url(settings, bounded=bounded)},
        "apps": {
            APP_LABEL: {
                "models": MODEL_MODULES,
                "default_connection": connection,
                "migrations": MIGRATIONS_MODULE,
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


class RecorderWithoutSourceParsing(MigrationRecorder):
    """Tortoise's migration recorder, its table's model made without reading source.

    Tortoise makes the recorder's model class anew on every migrate, and making a model class
    reads the class's source for `#:` field comments (inspect.getsource, which ast.parses the
    whole module). CPython 3.11.7's ast conversion keeps its recursion depth per process, not per
    thread: two threads parsing at once fail with "SystemError: AST constructor recursion depth
    mismatch" (failed a test's set-up once: the tests migrate in a worker thread). `_no_comments`
    is Tortoise's own switch for the models it makes in migrations; the model is otherwise the
    same as Tortoise's (tests/test_database.py compares them)."""

    def _make_model(self, table_name: str) -> type[Model]:
        class MigrationRecord(Model):
            _no_comments = True
            id = fields.IntField(primary_key=True)
            app = fields.CharField(max_length=255)
            name = fields.CharField(max_length=255)
            applied_at = fields.DatetimeField()

            class Meta:
                table = table_name
                app = "_migrations"
                unique_together = (("app", "name"),)

        return MigrationRecord


# The executor makes its recorder by this name; every migrate (ours, the CLI's, the tests') uses it.
migration_executor.MigrationRecorder = RecorderWithoutSourceParsing


async def migrate(settings: Settings) -> None:
    """Apply every checked-in migration not yet applied."""
    from tortoise.migrations.api import migrate as run_migrations

    await run_migrations(config=tortoise_config(settings, bounded=False))
    await Tortoise.close_connections()


async def open_database(settings: Settings) -> None:
    await Tortoise.init(config=tortoise_config(settings))


async def close_database() -> None:
    await Tortoise.close_connections()
