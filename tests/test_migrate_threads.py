"""Migrating parses no Python source: CPython 3.11.7's ast conversion fails ("SystemError: AST
constructor recursion depth mismatch") when two threads parse at once, and the tests migrate in
worker threads (tests/conftest.py's run_blocking) while other threads run. Once a fresh-clone
`make test` failed a test's set-up on it: Tortoise made its migration recorder's model on every
migrate, reading the class's source (inspect.getsource) for field comments."""
from __future__ import annotations

import ast

from tortoise.migrations import executor as migration_executor
from tortoise.migrations.recorder import MigrationRecorder

from livecart.server import db
from livecart.server.settings import Settings
from tests.conftest import run_blocking


def test_migrating_a_new_and_a_migrated_database_parses_no_source(tmp_path, monkeypatch):
    parsed: list[str] = []
    real_parse = ast.parse

    def counting_parse(source, *args, **kwargs):
        parsed.append(str(source)[:80])
        return real_parse(source, *args, **kwargs)

    monkeypatch.setattr(ast, "parse", counting_parse)
    settings = Settings(database_url=f"sqlite://{tmp_path / 'fresh.sqlite3'}")
    run_blocking(db.migrate(settings))  # every migration applied
    run_blocking(db.migrate(settings))  # none left: what every later start does
    assert parsed == []


def test_the_recorder_tortoise_makes_is_ours_and_keeps_tortoises_table():
    """Fails on the Tortoise upgrade that makes its recorder some other way, or changes the
    recorder's table (the history every database keeps)."""
    executor = migration_executor.MigrationExecutor(None, {})
    assert isinstance(executor.recorder, db.RecorderWithoutSourceParsing)
    ours, theirs = executor.recorder.model._meta, MigrationRecorder(None).model._meta
    assert ours.db_table == theirs.db_table == "tortoise_migrations"
    assert ours.app == theirs.app
    assert ours.unique_together == theirs.unique_together
    describe = lambda meta: {name: (type(f).__name__, f.pk, getattr(f, "max_length", None)) for name, f in meta.fields_map.items()}
    assert describe(ours) == describe(theirs)
