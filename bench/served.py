"""`livecart serve` exactly as shipped, plus a counter of the SQL statements it sends.

The bench's polling-against-push comparison needs the statements the server itself
issues; PostgreSQL's pg_stat_statements is not loaded on every machine, so the count
comes from Tortoise's own statement log (tortoise.db_client at DEBUG). The counting
handler never formats a record, so it costs a few microseconds per statement. The
counts are served at /bench/statements. Everything else is `livecart serve`: this
module wraps server.app.create_app and then runs the real CLI.
"""
from __future__ import annotations

import logging
import sys
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
        return app

    livecart.server.app.create_app = create_app
    install_counter()
    cli.main(["serve", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
