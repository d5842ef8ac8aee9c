"""The pages' own GraphQL documents, read from client/static/*.js at run time.

The live-page bench must load what a browser loads: copying the documents here would let them
drift from the pages. A page declares each document as `const NAME = `...`;` (a template literal
that may splice in other such constants, `${PRODUCT_FIELDS}`); this reads those, nothing else.
"""
from __future__ import annotations

import re
from functools import cache
from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "client" / "static"
_CONSTANT = re.compile(r"^const ([A-Z][A-Z0-9_]*) = (?:`([^`]*)`|\"([^\"]*)\");", re.MULTILINE | re.DOTALL)
_SPLICE = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


@cache
def documents(page: str) -> dict[str, str]:
    """Every string constant of client/static/<page>, its splices filled in, whitespace folded."""
    raw = {name: template or plain
           for name, template, plain in _CONSTANT.findall((STATIC / page).read_text())}

    def filled(text: str) -> str:
        return _SPLICE.sub(lambda m: filled(raw[m.group(1)]), text)

    return {name: " ".join(filled(text).split()) for name, text in raw.items()}


def live(name: str) -> str:
    """A document of the viewer's page (live.js): STREAM, SUB_COMMENTS, REACT, JOIN, BUY_NOW, ..."""
    return documents("live.js")[name]


def dashboard(name: str) -> str:
    """A document of the seller's dashboard (dashboard.js): SUB_STATS, SUB_ORDERS, ..."""
    return documents("dashboard.js")[name]
