"""The `livecart` command: serve, migrate, demo-data, export-schema."""
from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import sys

from livecart.server.settings import Settings, SettingsError


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
    settings = _settings()
    if args.host is not None:
        settings = settings.replace(host=args.host)
    if args.port is not None:
        settings = settings.replace(port=args.port)
    try:
        settings.validate()
    except SettingsError as exc:  # names PORT/HOST: the flag's value stands in for them
        sys.exit(f"livecart: {exc} (from --port/--host)")
    if args.workers is not None:
        if args.workers <= 0:
            sys.exit("livecart: --workers must be a positive whole number")
        settings = settings.replace(workers=args.workers)
    if settings.workers > 1 and not args.worker:
        problem = _multi_worker_problem(settings)
        if problem:
            sys.exit(f"livecart: {problem}")
        print(
            f"livecart: serving GraphQL at http://{settings.host}:{settings.port}/graphql"
            f" with {settings.workers} workers",
            flush=True,
        )
        sys.exit(supervise(settings))
    _serve_one(settings, reuse_port=args.worker)


def _multi_worker_problem(settings: Settings) -> str | None:
    if settings.is_sqlite:
        return "--workers above 1 needs a PostgreSQL DATABASE_URL (the embedded SQLite is one process's)"
    if not settings.redis_url:
        return "--workers above 1 needs REDIS_URL (events and rate limits must be shared between workers)"
    return None


def _serve_one(settings: Settings, *, reuse_port: bool) -> None:
    """One process serving until SIGTERM/SIGINT: aiohttp then stops accepting, the app's
    on_shutdown closes WebSockets with 1001, in-flight requests get SHUTDOWN_TIMEOUT_SECONDS."""
    from aiohttp import web

    from livecart.server.app import create_app, freeze_startup_heap
    from livecart.server.middleware import configure_logging
    from livecart.subscriptions.redis_channels import RedisConfigError

    configure_logging(settings)  # LOG_FORMAT=json: one JSON object per line, with request ids
    _use_uvloop()
    if not reuse_port:
        print(f"livecart: serving GraphQL at http://{settings.host}:{settings.port}/graphql", flush=True)
        if settings.log_format == "text":  # JSON logs are read by machines: one object per line after the banner
            print(pages_banner(settings), flush=True)
    app = create_app(settings)
    app.on_startup.append(freeze_startup_heap)
    try:
        web.run_app(
            app,
            host=settings.host,
            port=settings.port,
            print=None,
            shutdown_timeout=settings.shutdown_timeout_seconds,
            reuse_port=reuse_port or None,
            access_log=None,  # the middleware logs each request once, with its request id
        )
    except RedisConfigError as exc:  # e.g. REDIS_CLUSTER on, and REDIS_URL's server is no cluster node
        sys.exit(f"livecart: {exc}")


def pages_banner(settings: Settings) -> str:
    """The pages a person opens first, at the address the pages' own links use."""
    base = settings.public_url.rstrip("/")
    return "\n".join((
        f"  live now:          {base}/",
        f"  seller dashboard:  {base}/seller",
        f"  replays:           {base}/replays",
        f"  GraphiQL:          {base}/graphql",
    ))


def supervise(settings: Settings) -> int:
    """`serve --workers N`: N worker processes, each listening on the same port (SO_REUSEPORT: the
    kernel spreads connections over them). SIGTERM/SIGINT is passed on to every worker, which shuts
    down gracefully; the exit status is 0 when they all stopped cleanly. A worker that dies on its
    own takes the others down (status 1): restarting is the job of the process manager."""
    import signal
    import subprocess
    import time

    env = {**os.environ, "HOST": settings.host, "PORT": str(settings.port), "WORKERS": "1"}
    command = [sys.executable, "-m", "livecart.server.cli", "serve", "--worker"]
    workers = [subprocess.Popen(command, env=env) for _ in range(settings.workers)]
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping and all(worker.poll() is None for worker in workers):
        time.sleep(0.2)
    if not stopping:
        failed = next(worker for worker in workers if worker.poll() is not None)
        print(f"livecart: worker {failed.pid} exited with {failed.returncode}; stopping the others", file=sys.stderr)
        stop(signal.SIGTERM, None)
    deadline = time.monotonic() + settings.shutdown_timeout_seconds + 10
    for worker in workers:
        try:
            worker.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"livecart: worker {worker.pid} did not stop in time; killing it", file=sys.stderr)
            worker.kill()
            worker.wait()
    clean = all(worker.returncode == 0 for worker in workers)
    return 0 if stopping and clean else 1


def cmd_migrate(args: argparse.Namespace) -> None:
    from livecart.server.db import migrate

    asyncio.run(migrate(_settings()))
    print("livecart: database is up to date")


def cmd_demo_data(args: argparse.Namespace) -> None:
    from livecart.server.demo import load_demo_data

    asyncio.run(load_demo_data(_settings()))


def cmd_export_schema(args: argparse.Namespace) -> None:
    from livecart.schema import build_schema

    sdl = build_schema().as_str() + "\n"
    if args.output == "-":
        sys.stdout.write(sdl)
    else:
        pathlib.Path(args.output).write_text(sdl)
        print(f"livecart: wrote {args.output}")


def cmd_trusted_documents(args: argparse.Namespace) -> None:
    """The manifest of the pages' documents, for TRUSTED_DOCUMENTS (Apollo's manifest format)."""
    import json

    from graphql import GraphQLError, parse, validate

    from livecart.schema import build_schema
    from livecart.schema.internals import graphql_schema
    from livecart.server.pages import STATIC_DIR
    from livecart.server.persisted import apollo_manifest, page_documents

    schema = graphql_schema(build_schema())

    def is_document(text: str) -> bool:
        try:
            return not validate(schema, parse(text))
        except GraphQLError:
            return False

    manifest = apollo_manifest(page_documents(STATIC_DIR, is_document))
    text = json.dumps(manifest, indent=2) + "\n"
    if args.output == "-":
        sys.stdout.write(text)
    else:
        pathlib.Path(args.output).write_text(text)
        print(f"livecart: wrote {len(manifest['operations'])} documents to {args.output}")
def cmd_ingest_config(args: argparse.Namespace) -> None:
    """Prints a ready nginx.conf (RTMP with the hooks, HLS, the HTTP server of the media)."""
    from livecart.server.ingest import nginx_config

    settings = _settings()
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    try:
        text = nginx_config(
            settings,
            http_listen=args.http_listen,
            hooks_url=args.hooks_url or f"http://{host}:{settings.port}",
            run_dir=args.run_dir or str(pathlib.Path(settings.media_dir) / "nginx"),
        )
    except ValueError as exc:
        sys.exit(f"livecart: {exc}")
    sys.stdout.write(text)


def cmd_makemigrations(args: argparse.Namespace) -> None:
    """For developers: write a migration for model changes (Tortoise's autodetector)."""
    import json
    import tempfile

    from tortoise.cli import cli as tortoise_cli

    from livecart.server.db import tortoise_config

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
    serve.add_argument("--workers", type=int, help="worker processes on one port (default WORKERS, 1)")
    serve.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # one of --workers' processes
    serve.set_defaults(func=cmd_serve)

    commands.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    commands.add_parser("demo-data", help="load demo data (idempotent)").set_defaults(func=cmd_demo_data)

    export = commands.add_parser("export-schema", help="write the SDL")
    export.add_argument("output", nargs="?", default="schema.graphql")
    export.set_defaults(func=cmd_export_schema)

    trusted = commands.add_parser("trusted-documents", help="write the manifest of the pages' documents (TRUSTED_DOCUMENTS)")
    trusted.add_argument("output", nargs="?", default="trusted-documents.json")
    trusted.set_defaults(func=cmd_trusted_documents)
    ingest = commands.add_parser("ingest-config", help="print a media server configuration for the settings in force")
    ingest.add_argument("server", choices=["nginx"])
    ingest.add_argument("--http-listen", default="8080", help="where nginx serves HLS and recordings (default 8080)")
    ingest.add_argument("--hooks-url", help="livecart's address as nginx reaches it (default http://HOST:PORT)")
    ingest.add_argument("--run-dir", help="nginx's pid, logs and temporary files (default MEDIA_DIR/nginx)")
    ingest.set_defaults(func=cmd_ingest_config)

    from livecart.server import simulate

    simulate.add_parser(commands)

    makemigrations = commands.add_parser("makemigrations", help="write a migration for model changes")
    makemigrations.add_argument("--name", "-n")
    makemigrations.set_defaults(func=cmd_makemigrations)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
