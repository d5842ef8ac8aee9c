"""OpenTelemetry for the layers below the server (issue 16): off unless server/tracing.py
enables it (TRACING=on), and then only through this module, so that nothing here needs the
OpenTelemetry packages installed while tracing is off (each helper costs one check then).

A published event carries its publisher's trace context (`trace`, W3C traceparent), so the
span of its delivery to subscribers, in this process or another one reached through Redis,
is linked to the mutation that caused it.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

_tracer: Any = None  # an opentelemetry Tracer while tracing is on


def enable(tracer: Any) -> None:
    global _tracer
    _tracer = tracer


def enabled() -> bool:
    return _tracer is not None


def tracer() -> Any:
    return _tracer


@contextlib.contextmanager
def span(name: str, *, kind: str = "INTERNAL", links: list | None = None, root: bool = False, **attributes: Any) -> Iterator[Any]:
    """A span around the block while tracing is on (None otherwise); `root`: the start of a trace
    of its own (a delivery is caused by a publish it links to, not by whatever task runs it).
    Attribute names are given with `__` for their dots."""
    if _tracer is None:
        yield None
        return
    from opentelemetry.context import Context
    from opentelemetry.trace import SpanKind

    with _tracer.start_as_current_span(
        name, context=Context() if root else None, kind=getattr(SpanKind, kind), links=links,
        attributes={k.replace("__", "."): v for k, v in attributes.items()},
    ) as current:
        yield current


def with_trace(event: dict) -> dict:
    """The event with the current trace context in it (unchanged while tracing is off)."""
    if _tracer is None:
        return event
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {**event, "trace": carrier} if carrier else event


def links_of(event: Any) -> list:
    """A link to the span that published `event`, if it carried one."""
    carrier = event.get("trace") if isinstance(event, dict) else None
    if _tracer is None or not isinstance(carrier, dict):
        return []
    from opentelemetry import propagate, trace

    context = trace.get_current_span(propagate.extract(carrier)).get_span_context()
    return [trace.Link(context)] if context.is_valid else []
