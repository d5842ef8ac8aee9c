"""bench/REPORT.md: every figure, the command that made it, and the machine it ran on."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.fanout import FanoutRun, Window
from bench.flashsale import FlashSale
from bench.issue20 import Issue20
from bench.polling import PollCost
from bench.profile import Profile
from bench.queries import NO_SHARED_RESULTS, UNDER_WRITES, QueryRow
from bench.stats import fmt, percentile

SHARED, DEFAULT = "livecart", "strawberry default"
PROJECT_DIRS = ("schema/", "resolvers/", "subscriptions/", "server/", "models/")
# Frames every sample passes through: they say nothing about where the time goes.
WRAPPER_FUNCTIONS = {"run_app", "_run_app", "cmd_serve", "main", "run", "run_until_complete", "run_forever",
                     "_run_once", "_run", "_bootstrap", "_bootstrap_inner"}


def _is_wrapper(frame: str) -> bool:
    return frame.split(" (", 1)[0].rsplit(".", 1)[-1] in WRAPPER_FUNCTIONS


@dataclass
class Results:
    command: str = ""
    started: str = ""
    finished: str = ""
    machine: list[tuple[str, str]] = field(default_factory=list)
    config: list[tuple[str, str]] = field(default_factory=list)
    fanout: list[FanoutRun] = field(default_factory=list)
    poll_cost: PollCost | None = None
    queries: list[QueryRow] = field(default_factory=list)
    postgraphile: str = ""
    query_check: str = ""
    flash_sale: FlashSale | None = None
    profiles: list[Profile] = field(default_factory=list)
    switch: str = ""
    notes: list[str] = field(default_factory=list)
    memory: FanoutRun | None = None  # idle subscribers on a server that served nothing before
    issue20: Issue20 = field(default_factory=Issue20)

    def run(self, path: str, subscribers: int) -> FanoutRun | None:
        for run in self.fanout:
            if run.path == path and run.subscribers == subscribers:
                return run
        return None

    def largest(self, path: str) -> FanoutRun | None:
        runs = [r for r in self.fanout if r.path == path and r.steady is not None]
        return max(runs, key=lambda r: r.subscribers) if runs else None


def _kb(value: float | None) -> str:
    return "n/a" if value is None else f"{value / 1024:,.1f} KB"


def _mib(value: int) -> str:
    return f"{value / 1024 / 1024:,.1f} MiB"


def _verdict(ok: bool | None) -> str:
    return {True: "**reached**", False: "**not reached**", None: "not measured"}[ok]


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _statements_per_comment(window: Window | None) -> float | None:
    if window is None or not window.comments or not window.statements:
        return None
    return window.statements.get("total", 0) / window.comments


# ---------------------------------------------------------------- targets

def targets(results: Results) -> list[list[str]]:
    rows = []
    fast, base = results.largest(SHARED), results.largest(DEFAULT)
    at = f" at {fast.subscribers:,}" if fast else ""
    size_note = "" if fast is None or fast.subscribers >= 10_000 else f" (largest size run: {fast.subscribers:,})"

    p99 = fast.steady.p99_ms if fast else None
    complete = fast is not None and fast.steady.delivered == fast.steady.expected and fast.steady.expected > 0
    ok = None if p99 is None or fast.subscribers < 10_000 else (p99 < 250 and complete)
    delivered = f", {fast.steady.delivered:,}/{fast.steady.expected:,} delivered" if fast else ""
    rows.append(["10,000 subscribers, p99 delivery < 250 ms at 1 comment/s",
                 f"p99 {fmt(p99)} ms{at}{delivered}{size_note}", _verdict(ok)])

    ratio = None
    if fast and base and fast.subscribers == base.subscribers:
        a, b = fast.steady.cpu_us_per_message, base.steady.cpu_us_per_message
        ratio = b / a if a and b else None
    rows.append([">= 10x less server CPU per delivered message than strawberry's default path",
                 f"{fmt(ratio)}x{at}" if ratio else "n/a", _verdict(None if ratio is None else ratio >= 10)])

    by_query: dict[str, dict[str, float]] = {}
    for row in results.queries:
        if row.result is not None and row.result.requests:
            by_query.setdefault(row.query, {})[row.server] = row.result.per_second
    for query, figures in by_query.items():
        for suffix in ("", f", {UNDER_WRITES}"):
            ours, theirs = figures.get("livecart" + suffix), figures.get("postgraphile" + suffix)
            if ours is None and theirs is None:
                continue
            ok = None if ours is None or theirs is None else ours >= theirs
            measured = f"{fmt(ours, 0)} vs {fmt(theirs, 0)} req/s"
            unshared = figures.get(f"livecart, {NO_SHARED_RESULTS}")
            if not suffix and unshared is not None:
                measured += f" ({fmt(unshared, 0)} with {NO_SHARED_RESULTS})"
            when = f" with {UNDER_WRITES}" if suffix else ""
            rows.append([f"`{query}`{when}: req/s >= PostGraphile", measured, _verdict(ok)])
    if not by_query:
        rows.append(["Live-page queries: req/s >= PostGraphile", "n/a", _verdict(None)])

    mem = results.memory or fast
    per = mem.rss_per_subscriber if mem else None
    where = f" at {mem.subscribers:,}" + (" on a fresh server" if mem is results.memory else "") if mem else ""
    rows.append(["Idle subscriber memory < 20 KB", f"{_kb(per)}{where}",
                 _verdict(None if per is None or mem.subscribers < 10_000 else per < 20 * 1024)])

    sale = results.flash_sale
    if sale is not None and sale.buyers and not sale.first_error:
        rows.append(["The flash sale never oversells",
                     f"{sale.units_sold_in_db} sold of {sale.stock_before}, stock now {sale.stock_after}",
                     _verdict(not sale.oversold)])
    else:
        rows.append(["The flash sale never oversells", "n/a", _verdict(None)])
    return rows


# ---------------------------------------------------------------- sections

def observations(results: Results) -> list[str]:
    """What the figures say about the code, computed from them (so they stay true when the code changes)."""
    notes = []
    post = results.poll_cost.post_comment_statements if results.poll_cost else 0.0
    for run in sorted(results.fanout, key=lambda r: (r.path, r.subscribers)):
        per_comment = _statements_per_comment(run.steady)
        if per_comment is not None and run.connected:
            per_subscriber = max(0.0, per_comment - post) / run.connected
            notes.append(f"{run.path}, {run.subscribers:,} subscribers: {per_comment:,.1f} SQL statements per comment,"
                         f" {per_subscriber:.3f} per subscriber beyond the postComment mutation's own"
                         + (" (every subscriber still reads the database for every event)" if per_subscriber > 0.5
                            else ""))
    for run in sorted(results.fanout, key=lambda r: (r.path, r.subscribers)):
        w = run.steady
        if w is not None and w.cpu_us_per_message and run.connected:
            per_comment = w.cpu_us_per_message * run.connected / 1e6
            if per_comment > 1.0:
                notes.append(f"{run.path}, {run.subscribers:,} subscribers: one comment costs {per_comment:.1f} s of"
                             " server CPU, so one process cannot keep up with a comment a second at this size:"
                             " deliveries queue up and the latency grows with every comment.")
    for profile in results.profiles:
        if profile.categories:
            parts = ", ".join(f"{c} {p:.0f}%" for c, p in profile.categories if p >= 1)
            notes.append(f"{profile.name}: {parts}.")
    return notes


def fanout_section(results: Results) -> list[str]:
    lines = ["## 1-2. Fan-out: commentAdded on one stream, one comment a second", "",
             "Measured by `bench/fanout.py`: the subscribers are raw aiohttp WebSocket clients speaking",
             "graphql-transport-ws in `bench/loadgen.py` worker processes; the comments are posted through the",
             "public `postComment` mutation by the bench's own process.", ""]
    rows = []
    for run in sorted(results.fanout, key=lambda r: (r.subscribers, r.path != SHARED)):
        w = run.steady
        if w is None:
            rows.append([run.path, f"{run.subscribers:,}", f"{run.connected:,}", "n/a", "n/a", "n/a", "n/a", "n/a",
                         "n/a", run.note or run.connect_error or "did not run"])
            continue
        rows.append([
            run.path, f"{run.subscribers:,}", f"{run.connected:,}", f"{w.delivered:,}/{w.expected:,}",
            fmt(w.p50_ms), fmt(w.p99_ms), fmt(w.max_ms), fmt(percentile(w.post_latencies_ms, 99)),
            fmt(w.cpu_us_per_message), fmt(_statements_per_comment(w)),
            "; ".join(x for x in (run.note, w.errors.get("first_error", ""), run.connect_error) if x) or "",
        ])
    lines += _table(["path", "subscribers", "connected", "delivered", "p50 ms", "p99 ms", "max ms",
                     "p99 post→client ms", "server CPU µs/message", "SQL statements/comment", "notes"], rows)
    lines += ["",
              "- *p50/p99/max*: commit to client, the subscriber's receive time minus the comment's `createdAt`.",
              "  *post→client* adds the postComment request itself (the poster's clock before sending).",
              "- *server CPU µs/message*: the server process's user+system CPU (from `/proc/<pid>/stat`) over the",
              "  window, including the postComment mutations, divided by the messages delivered in it.",
              "- *SQL statements/comment*: every statement the server sent in the window, per comment posted",
              "  (the mutation's own included).", ""]
    ratios = []
    for run in results.fanout:
        base = results.run(DEFAULT, run.subscribers)
        if run.path == SHARED and base and run.steady and base.steady:
            a, b = run.steady.cpu_us_per_message, base.steady.cpu_us_per_message
            if a and b:
                ratios.append(f"{run.subscribers:,}: **{b / a:,.1f}x**")
    if ratios:
        lines += ["CPU per delivered message, strawberry default path / livecart: " + ", ".join(ratios) + ".", ""]
    windows = {run.steady.comments for run in results.fanout if run.steady is not None}
    if len(windows) > 1:
        lines += ["When a server cannot keep up (see Observations), latency measures its queue, which grows with",
                  "every comment of the window; the windows differ in length here, so compare such rows by CPU",
                  "per message, not by latency.", ""]
    burst_rows = []
    for run in results.fanout:
        if run.burst is not None:
            b = run.burst
            burst_rows.append([run.path, f"{run.subscribers:,}", f"{b.comments}", f"{b.delivered:,}/{b.expected:,}",
                               fmt(b.deliveries_per_second, 0), fmt(b.p99_ms), fmt(b.cpu_us_per_message)])
    if burst_rows:
        lines += ["### Most deliveries per second of one server process", "",
                  "Comments posted as fast as the server takes them (8 posters at once), until every subscriber",
                  "has every comment: deliveries / (last receive - first post).", ""]
        lines += _table(["path", "subscribers", "comments", "delivered", "deliveries/s", "p99 ms", "CPU µs/message"],
                        burst_rows)
        lines.append("")
    return lines


def memory_section(results: Results) -> list[str]:
    lines = ["## 6. Memory per idle subscriber", "",
             "Server RSS (`/proc/<pid>/statm`) before the subscribers connect and once all are subscribed and",
             "idle (after the warm-up comment), divided by the subscribers connected. The first row is a server",
             "that served nothing before (the target's figure); in the fan-out rows below it the server reuses",
             "memory freed by the earlier sizes, which makes the larger sizes look cheaper than they are.", ""]
    rows = []
    if results.memory is not None and results.memory.connected:
        m = results.memory
        rows.append(["livecart, fresh server", f"{m.connected:,}", _mib(m.rss_before), _mib(m.rss_subscribed),
                     _kb(m.rss_per_subscriber)])
    for run in sorted(results.fanout, key=lambda r: (r.subscribers, r.path != SHARED)):
        if run.connected:
            rows.append([run.path, f"{run.connected:,}", _mib(run.rss_before), _mib(run.rss_subscribed),
                         _kb(run.rss_per_subscriber)])
    lines += _table(["path", "subscribers", "RSS before", "RSS subscribed", "per subscriber"], rows)
    return lines + [""]


def queries_section(results: Results) -> list[str]:
    lines = ["## 3. Live-page queries at 64 concurrent clients, livecart against PostGraphile", "",
             f"PostGraphile {results.postgraphile or 'n/a'} (Amber preset, `bench/postgraphile/graphile.config.mjs`),"
             " installed by the bench from the npm registry into `bench/postgraphile/`, serving the same",
             "PostgreSQL database. Each server is one process; the load comes from one other process (aiohttp,",
             "64 connections). The queries are in `bench/queries.py`; both servers return the same rows"
             + (f" ({results.query_check})." if results.query_check else " (checked before measuring)."), "",
             "livecart answers a query that selects nothing caller-dependent from one shared execution until a",
             "write of ours changes the data (`server/query_cache.py`). The rows: `livecart` as shipped with no",
             f"writes meanwhile; `livecart, {UNDER_WRITES}` (each comment, posted through livecart, invalidates",
             f"the shared results, as on a busy live page); `livecart, {NO_SHARED_RESULTS}` (`QUERY_CACHE_SECONDS=0`:",
             "every request executes); PostGraphile alone and with the same writes. SQL statements per request",
             "are the server's own count over ten requests in a row, as served (a result already shared costs none).", ""]
    rows = []
    for row in results.queries:
        r = row.result
        if r is None:
            rows.append([row.query, row.server, "n/a", "n/a", "n/a", "n/a", "", row.note])
            continue
        rows.append([row.query, row.server, f"{r.requests:,}", fmt(r.per_second, 0),
                     fmt(percentile(r.latencies_ms, 50)), fmt(percentile(r.latencies_ms, 99)),
                     fmt(row.statements, 1) if row.statements is not None else "",
                     f"{r.errors} errors" + (f": {r.first_error[:120]}" if r.first_error else "")])
    lines += _table(["query", "server", "requests", "req/s", "p50 ms", "p99 ms", "SQL statements/request",
                     "notes"], rows)
    return lines + [""]


def polling_section(results: Results) -> list[str]:
    from bench.polling import SEED_SELLER_STATEMENTS, SEED_VIEWER_STATEMENTS, VIEWERS

    cost = results.poll_cost
    lines = ["## 4. Polling against push: SQL statements per second at 10,000 viewers", "",
             "Measured by `bench/polling.py` and the fan-out windows; statements are counted by the server",
             "itself (`bench/served.py` counts Tortoise's statement log; pg_stat_statements is not loaded here).", ""]
    if cost is None:
        return lines + ["Not measured.", ""]
    if cost.error:
        lines += [f"Measuring a poll failed: `{cost.error}`.", ""]
    fast, base = results.largest(SHARED), results.largest(DEFAULT)
    rows = [
        [f"seed design (PHP endpoints): {VIEWERS:,} viewers x {SEED_VIEWER_STATEMENTS} statements / 10 s"
         f" + seller {SEED_SELLER_STATEMENTS} / 5 s", "counted from the seed's flows", fmt(cost.seed_polling_per_second(), 0)],
        [f"the same polling served by livecart's queries ({fmt(cost.viewer_poll_statements, 2)} statements a viewer"
         f" poll, {fmt(cost.seller_poll_statements, 2)} a seller poll)",
         f"measured per poll with {NO_SHARED_RESULTS} (each poll executed), x rate",
         fmt(cost.livecart_polling_per_second if cost.viewer_poll_statements else None, 0)],
    ]
    for label, run in (("livecart subscriptions", fast), ("strawberry default path", base)):
        per_comment = _statements_per_comment(run.steady) if run else None
        if per_comment is not None:
            pushed = max(0.0, per_comment - cost.post_comment_statements)
            rows.append([f"{label}: {run.subscribers:,} subscribers, 1 comment/s ({fmt(per_comment, 1)} statements"
                         f" a comment, less {fmt(cost.post_comment_statements, 1)} for postComment itself)",
                         "measured in the fan-out window", fmt(pushed, 1)])
    lines += _table(["design", "how", "statements/s"], rows)
    lines += ["", "Writes (the comment itself) cost the same in both designs and are left out of both.",
              "Push costs statements only when something changes; polling costs them every interval, changed or not.", ""]
    return lines


def flash_sale_section(results: Results) -> list[str]:
    sale = results.flash_sale
    lines = ["## 5. Flash sale: concurrent buyNow on one product (PostgreSQL)", "",
             "Measured by `bench/flashsale.py`: every buyer has an account and a token, all wait at one",
             "`asyncio.Event`, then send `buyNow(quantity: 1)` at once; the database is read before and after.", ""]
    if sale is None:
        return lines + ["Not measured.", ""]
    if sale.outcomes.get("GRAPHQL_VALIDATION_FAILED") == sale.buyers:
        return lines + ["**Not measured: `buyNow` is not in the served schema yet** (the seller/commerce work had not",
                        f"landed when this ran). The server answered: `{sale.first_error}`", ""]
    outcomes = ", ".join(f"{k}: {v}" for k, v in sorted(sale.outcomes.items()))
    lines += _table(["buyers", "stock before", "orders", "outcomes", "units sold (DB)", "stock after", "oversold",
                     "seconds", "checkouts/s", "p99 ms"],
                    [[str(sale.buyers), str(sale.stock_before), str(sale.orders_ok), outcomes,
                      str(sale.units_sold_in_db), str(sale.stock_after), "**yes**" if sale.oversold else "no",
                      fmt(sale.seconds, 2), fmt(sale.checkouts_per_second, 1), fmt(sale.p99_ms)]])
    if sale.first_error:
        lines += ["", f"Unexpected error: `{sale.first_error}`"]
    return lines + [""]


def profile_section(results: Results) -> list[str]:
    lines = ["## Where the time goes (py-spy)", ""]
    if not results.profiles:
        return lines + ["No profile taken.", ""]
    for profile in results.profiles:
        lines += [f"### {profile.name}", ""]
        if profile.error and not profile.samples:
            lines += [f"Not available: {profile.error}", ""]
            continue
        lines += [f"{profile.samples:,} samples at 100 Hz; raw collapsed stacks in `{profile.raw_path}` (not committed).", ""]
        if profile.categories:
            lines += ["Share of the busy samples whose stack is in:", ""]
            lines += _table(["part", "% of samples"], [[c, f"{p:.1f}"] for c, p in profile.categories])
            lines.append("")
        lines += ["Most samples on their own (self):", ""]
        lines += _table(["function", "self %"], [[f"`{f}`", f"{p:.1f}"] for f, p in profile.self_top])
        interesting = [(f, p) for f, p in profile.inclusive_top if not _is_wrapper(f) and any(d in f for d in PROJECT_DIRS + (
            "strawberry", "graphql", "aiohttp", "tortoise", "asyncpg", "orjson", "redis"))][:15]
        if interesting:
            lines += ["", "With what they call (inclusive), the project's and its libraries' frames:", ""]
            lines += _table(["function", "inclusive %"], [[f"`{f}`", f"{p:.1f}"] for f, p in interesting])
        lines.append("")
    return lines


def write(results: Results, path: Path) -> None:
    lines = ["# livecart benchmark report", "",
             "Generated by the bench; do not edit by hand. Run again with the command below.", "",
             f"- Command: `{results.command}`", f"- Run: {results.started} to {results.finished} (UTC)", ""]
    lines += ["## Machine", ""] + _table(["", ""], [[k, v] for k, v in results.machine]) + [""]
    lines += ["## Set-up", ""] + _table(["", ""], [[k, v] for k, v in results.config]) + [""]
    if results.switch:
        lines += [results.switch, ""]
    lines += ["## Targets", ""] + _table(["target", "measured", "verdict"], targets(results)) + [""]
    if results.notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in results.notes] + [""]
    found = observations(results)
    if found:
        lines += ["## Observations", ""] + [f"- {note}" for note in found] + [""]
    from bench import issue20

    lines += issue20.section(results)
    lines += fanout_section(results)
    lines += queries_section(results)
    lines += polling_section(results)
    lines += flash_sale_section(results)
    lines += memory_section(results)
    lines += profile_section(results)
    # The query cost section is measured by its own command (python -m bench.cost): kept as it is.
    from bench.cost import MARKER

    kept = path.read_text().split(MARKER, 1) if path.exists() else []
    cost_section = MARKER + kept[1] if len(kept) == 2 else ""
    path.write_text("\n".join(lines).rstrip() + "\n" + ("\n" + cost_section.rstrip() + "\n" if cost_section else ""))
