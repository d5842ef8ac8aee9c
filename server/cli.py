"""The `livecart` command: serve, migrate, demo-data, export-schema."""
from __future__ import annotations

import argparse
import asyncio
import logging
import pathlib
import sys

from server.settings import Settings, SettingsError


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        sys.exit(f"livecart: {exc}")


def _use_uvloop() -> None:
    """uvloop where it is installed (a dependency except on Windows): a faster event loop for the
    many small socket writes of a fan-out. bench/REPORT.md measures the server with it."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def cmd_serve(args: argparse.Namespace) -> None:
    from aiohttp import web

    from server.app import create_app

    settings = _settings()
    if args.host:
        settings = settings.replace(host=args.host)
    if args.port:
        settings = settings.replace(port=args.port)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    _use_uvloop()
    print(f"livecart: serving GraphQL at http://{settings.host}:{settings.port}/graphql", flush=True)
    web.run_app(create_app(settings), host=settings.host, port=settings.port, print=None)


def cmd_migrate(args: argparse.Namespace) -> None:
    from server.db import migrate

    asyncio.run(migrate(_settings()))
    print("livecart: database is up to date")


def cmd_demo_data(args: argparse.Namespace) -> None:
    from server.demo import load_demo_data

    asyncio.run(load_demo_data(_settings()))


def cmd_export_schema(args: argparse.Namespace) -> None:
    from schema import build_schema

    sdl = build_schema().as_str() + "\n"
    if args.output == "-":
        sys.stdout.write(sdl)
    else:
        pathlib.Path(args.output).write_text(sdl)
        print(f"livecart: wrote {args.output}")


def cmd_makemigrations(args: argparse.Namespace) -> None:
    """For developers: write a migration for model changes (Tortoise's autodetector)."""
    import json
    import tempfile

    from tortoise.cli import cli as tortoise_cli

    from server.db import tortoise_config

    with tempfile.NamedTemporaryFile("w", suffix=".json") as config_file:
        json.dump(tortoise_config(_settings()), config_file)
        config_file.flush()
        ctx = tortoise_cli.CLIContext(config=None, config_file=config_file.name)
        asyncio.run(tortoise_cli.makemigrations(ctx, (), False, args.name))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="livecart", description="Live-shopping GraphQL API")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the API (GraphiQL at /graphql)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    commands.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    commands.add_parser("demo-data", help="load demo data (idempotent)").set_defaults(func=cmd_demo_data)

    export = commands.add_parser("export-schema", help="write the SDL")
    export.add_argument("output", nargs="?", default="schema.graphql")
    export.set_defaults(func=cmd_export_schema)

    from server import simulate

    simulate.add_parser(commands)

    makemigrations = commands.add_parser("makemigrations", help="write a migration for model changes")
    makemigrations.add_argument("--name", "-n")
    makemigrations.set_defaults(func=cmd_makemigrations)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
