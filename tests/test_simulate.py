"""`livecart simulate` against a served app: its own tallies must equal what the
seller's dashboard (the stream's stats) reports afterwards."""
from __future__ import annotations

import asyncio
import io
import subprocess
from decimal import Decimal

import pytest

from livecart.server.app import create_app
from livecart.server.simulate import Plan, SimulationError, report, simulate
from livecart.client.livecart_client import LivecartClient
from tests.processes import LIVECART, ROOT, Ports, seller_with_live_stream, servers  # noqa: F401 - fixture
from tests.support import GraphQLClient, make_vendor

SELLER_PASSWORD = "correct horse"  # make_vendor's
PORTS = Ports(18110, 18129)  # the served instance of the command-line run


@pytest.fixture
async def served(aiohttp_client, settings) -> tuple[GraphQLClient, str]:
    # Every simulated viewer comes from 127.0.0.1: per-address limits are for real audiences.
    http = await aiohttp_client(create_app(settings.replace(rate_limits=False)))
    return GraphQLClient(http), str(http.make_url("")).rstrip("/")


async def live_stream(api: GraphQLClient) -> tuple[str, str]:
    seller = await make_vendor(api, "sim-seller", products=2, price="7.25", stock=1000)
    data = await api.data(
        "mutation($p: [ID!]!) { createStream(title: \"Simulated\", productIds: $p) { id } }",
        {"p": [str(i) for i in seller.product_ids]},
        token=seller.token,
    )
    stream_id = data["createStream"]["id"]
    await api.data("mutation($id: ID!) { startStream(id: $id) { id } }", {"id": stream_id}, token=seller.token)
    return stream_id, seller.token


async def test_a_small_simulation_matches_the_dashboard(served):
    api, url = served
    stream_id, seller_token = await live_stream(api)
    out = io.StringIO()
    plan = Plan(
        url=url, stream_id=stream_id, viewers=20, duration=5, comment_rate=0.3, react_rate=0.3, buy_rate=0.1,
        watchers=4, seller=("sim-seller", SELLER_PASSWORD), seed=7,
    )
    result = await simulate(plan, out)
    tally = result.tally

    assert tally.joined == tally.left == 20
    assert tally.comments > 0 and tally.orders > 0 and tally.reactions_sent > 0
    assert tally.errors == 0 and tally.rate_limited == 0
    assert tally.comments_seen > 0
    assert result.matches, result.rows()

    # Read the dashboard's figures independently of the simulator.
    stats = (await api.data(
        "query($id: ID!) { stream(id: $id) { stats { viewerCount uniqueViewers comments likes dislikes orders itemsSold revenue } } }",
        {"id": stream_id},
        token=seller_token,
    ))["stream"]["stats"]
    assert stats["comments"] == tally.comments
    assert (stats["likes"], stats["dislikes"]) == (tally.likes, tally.dislikes)
    assert (stats["orders"], stats["itemsSold"]) == (tally.orders, tally.items)
    assert Decimal(stats["revenue"]) == tally.revenue == Decimal("7.25") * tally.orders
    assert stats["uniqueViewers"] == 20
    assert stats["viewerCount"] == 0

    report(result, out)
    text = out.getvalue()
    assert "20 viewers on stream" in text and "all figures match" in text


async def test_without_a_live_stream_it_says_what_to_do(served):
    _, url = served
    with pytest.raises(SimulationError, match="no stream is live"):
        await simulate(Plan(url=url, viewers=1, duration=1), io.StringIO())


async def test_a_wrong_seller_login_stops_before_any_viewer_joins(served):
    api, url = served
    stream_id, _ = await live_stream(api)
    with pytest.raises(SimulationError, match="seller's login"):
        await simulate(Plan(url=url, stream_id=stream_id, viewers=1, duration=1, seller=("sim-seller", "wrong")), io.StringIO())
    counts = (await api.data("query($id: ID!) { stream(id: $id) { viewerCount } }", {"id": stream_id}))["stream"]
    assert counts["viewerCount"] == 0


async def test_the_command_against_a_served_instance_reports_matching_figures(servers, tmp_path):
    """`livecart simulate` as a person runs it: a separate `livecart serve`, the command in its own process."""
    url = servers.start(f"sqlite://{tmp_path / 'livecart.sqlite3'}", RATE_LIMITS="off")
    async with LivecartClient(url) as seller:
        stream, _ = await seller_with_live_stream(seller, stock=1000)
    command = [
        LIVECART, "simulate", "--url", url, "--stream", stream, "--viewers", "15", "--duration", "3",
        "--comment-rate", "0.5", "--react-rate", "0.5", "--buy-rate", "0.2", "--watchers", "3",
        "--seller", "seller:correct horse", "--seed", "11",
    ]
    run = await asyncio.to_thread(subprocess.run, command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("livecart simulate: 15 viewers on stream")
    assert any(line.startswith("done") and "viewers 0/15" in line for line in lines)  # the progress, to the end
    assert "figures from the seller dashboard" in run.stdout and lines[-1] == "all figures match"

    wrong = await asyncio.to_thread(
        subprocess.run, [*command[:-4], "--seller", "seller:wrong password"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert wrong.returncode != 0 and "seller's login" in wrong.stderr + wrong.stdout


async def test_other_viewers_on_the_stream_are_told_apart_from_a_mismatch(served):
    """Someone else watching, liking and commenting while the simulator runs (and leaving before it
    ends) moves the figures too: the run still matches, and the report says whose the rest is."""
    from tests.support import register

    api, url = served
    stream_id, _ = await live_stream(api)
    other = await register(api, "someone-else")
    session = (await api.data("mutation($s: ID!) { joinStream(streamId: $s) { id } }", {"s": stream_id}, token=other.token))
    plan = Plan(url=url, stream_id=stream_id, viewers=6, duration=2, comment_rate=0.5, react_rate=0.5, buy_rate=0.2,
                watchers=1, seller=("sim-seller", SELLER_PASSWORD), seed=5)

    out = io.StringIO()

    async def meanwhile() -> None:
        while "viewers on stream" not in out.getvalue():  # the run has read the figures before it
            await asyncio.sleep(0.05)
        await api.data("mutation($s: ID!) { react(streamId: $s, kind: LIKE) { likes } }", {"s": stream_id}, token=other.token)
        await api.data("mutation($s: ID!, $t: String!) { postComment(streamId: $s, text: $t) { id } }",
                       {"s": stream_id, "t": "not a simulated viewer"}, token=other.token)
        await api.data("mutation($id: ID!) { leaveStream(sessionId: $id) }", {"id": session["joinStream"]["id"]}, token=other.token)

    result, _ = await asyncio.gather(simulate(plan, out), meanwhile())
    rows = {row.name: row for row in result.table()}
    assert rows["viewerCount"].before == 1 and rows["viewerCount"].after == 0
    assert (rows["viewerCount"].change, rows["viewerCount"].verdict) == (-1, "others")
    assert rows["comments"].change == result.tally.comments + 1 and rows["comments"].verdict == "others"
    assert rows["likes"].change == result.tally.likes + 1 and rows["likes"].verdict == "others"
    assert rows["orders"].verdict == "match"
    assert result.matches and result.others_active

    report(result, out)
    text = out.getvalue()
    assert "before" in text and "after" in text and "change" in text
    assert "MISMATCH" not in text
    assert text.rstrip().endswith("other viewers were active on the stream too")


def test_a_figure_short_of_the_simulators_count_is_a_mismatch():
    from livecart.server.simulate import Result, Tally

    tally = Tally(comments=5, joined=3, left=3)
    result = Result(stream_id="1", title="t", tally=tally, server={"comments": 4, "viewerCount": 0, "uniqueViewers": 3},
                    source="public stream figures", seconds=1.0)
    verdicts = {row.name: row.verdict for row in result.table()}
    assert verdicts == {"comments": "MISMATCH", "viewerCount": "match", "uniqueViewers": "match"}
    assert not result.matches
    out = io.StringIO()
    report(result, out)
    assert "<- MISMATCH" in out.getvalue() and out.getvalue().rstrip().endswith("missing from the figures")
