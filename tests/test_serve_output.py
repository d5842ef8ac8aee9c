"""What `make serve` shows (issue 19): `livecart demo-data` then `livecart serve`, as separate
processes: the pages' addresses and the demo accounts, at the port actually served (PUBLIC_URL
follows PORT), and nothing that reads like a problem (warnings, "Tortoise-ORM shutdown")."""
from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.request

from livecart.server.cli import pages_banner
from livecart.server.settings import Settings
from tests.processes import LIVECART, ROOT, Ports, servers  # noqa: F401 - fixture

PORTS = Ports(20100, 20199)  # each served process takes the next free one
LOOKS_LIKE_A_PROBLEM = re.compile(r"warn|error|traceback|shutdown|deprecat|absent", re.IGNORECASE)


def test_the_banner_lists_the_pages_at_the_public_address():
    banner = pages_banner(Settings(port=9100))
    assert "http://127.0.0.1:9100/seller" in banner and "http://127.0.0.1:9100/replays" in banner
    assert "http://127.0.0.1:9100/graphql" in banner and "http://127.0.0.1:9100/\n" in banner
    assert "https://shop.example/seller" in pages_banner(Settings(port=9100, public_url="https://shop.example"))


def test_demo_data_then_serve_show_the_pages_and_accounts_at_the_port_served_and_nothing_alarming(servers, tmp_path):
    database = f"sqlite://{tmp_path / 'livecart.sqlite3'}"
    url = servers.start(database)  # PORT from this module's range, PUBLIC_URL unset
    port = int(url.rsplit(":", 1)[1])
    env = {**os.environ, "DATABASE_URL": database, "PORT": str(port)}
    env.pop("PUBLIC_URL", None)
    demo = subprocess.run([LIVECART, "demo-data"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert demo.returncode == 0, demo.stderr
    assert demo.stderr == ""
    assert demo.stdout.splitlines() == [
        "livecart: demo data ready",
        "  seller: demo-seller / livecart-demo",
        "  buyers: alice, bob, carol / livecart-demo",
        f"  live page: {url}/live/1",
    ]

    # The video addresses follow the port too: PUBLIC_URL defaults to the address served.
    body = json.dumps({"query": '{ stream(id: "1") { playbackUrl } }'}).encode()
    request = urllib.request.Request(f"{url}/graphql", data=body, headers={"Content-Type": "application/json"})
    playback = json.load(urllib.request.urlopen(request, timeout=10))["data"]["stream"]["playbackUrl"]
    assert playback.startswith(f"{url}/hls/")
    with urllib.request.urlopen(f"{url}/live/1", timeout=10) as page:
        assert page.status == 200

    log = servers.log_of(url).splitlines()
    assert log[:5] == [
        f"livecart: serving GraphQL at http://127.0.0.1:{port}/graphql",
        f"  live now:          {url}/",
        f"  seller dashboard:  {url}/seller",
        f"  replays:           {url}/replays",
        f"  GraphiQL:          {url}/graphql",
    ]
    assert [line for line in log if LOOKS_LIKE_A_PROBLEM.search(line)] == []
