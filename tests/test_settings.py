import subprocess
import sys

import pytest

from livecart.server.settings import Settings, SettingsError


def test_defaults_are_the_embedded_mode():
    settings = Settings.from_env({})
    assert settings.is_sqlite and settings.database_url.startswith("sqlite://./var/")
    assert settings.redis_url is None
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


def test_values_are_read_from_the_environment():
    settings = Settings.from_env({
        "DATABASE_URL": "postgres://u@h/db", "REDIS_URL": "redis://h:6379/0", "PORT": "9000",
        "TOKEN_TTL_SECONDS": "60", "PUBLIC_URL": "https://shop.example",
        "PLAYBACK_URL_TEMPLATE": "https://cdn.example/{playback_id}.m3u8",
    })
    assert settings.port == 9000 and settings.token_ttl_seconds == 60
    assert settings.playback_url("abc") == "https://cdn.example/abc.m3u8"
    assert settings.recording_url("abc") == "https://shop.example/recordings/abc.mp4"


@pytest.mark.parametrize("name, value", [
    ("PORT", "eighty"), ("PORT", "70000"), ("DATABASE_URL", "mysql://x"), ("REDIS_URL", "http://x"),
    ("TOKEN_TTL_SECONDS", "0"), ("PUBLIC_URL", "ftp://x"), ("PLAYBACK_URL_TEMPLATE", "{stream_key}"),
    ("ENVIRONMENT", "staging"),
])
def test_a_bad_value_names_its_variable(name, value):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: value})
    assert str(caught.value).startswith(f"{name}:")
    assert "\n" not in str(caught.value)


def test_a_bad_value_stops_the_cli_with_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "livecart.server.cli", "migrate"], env={"PORT": "nope", "PATH": ""}, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert result.stderr.strip() == "livecart: PORT: 'nope' is not a whole number"


def test_a_bad_port_flag_stops_serve_with_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "livecart.server.cli", "serve", "--port", "70000"], env={"PATH": ""}, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert result.stderr.strip() == "livecart: PORT: 70000 is not a TCP port (1-65535) (from --port/--host)"


def test_public_url_defaults_to_the_address_served_and_follows_it():
    assert Settings.from_env({}).public_url == "http://127.0.0.1:8000"
    moved = Settings.from_env({"PORT": "9001"})
    assert moved.public_url == "http://127.0.0.1:9001"
    assert moved.playback_url("abc") == "http://127.0.0.1:9001/hls/abc.m3u8"
    assert moved.replace(port=9002).public_url == "http://127.0.0.1:9002"  # serve --port
    assert Settings.from_env({"HOST": "0.0.0.0", "PORT": "80"}).public_url == "http://127.0.0.1:80"  # every address: this machine
    assert Settings.from_env({"HOST": "::1"}).public_url == "http://[::1]:8000"
    given = Settings.from_env({"PUBLIC_URL": "https://shop.example", "PORT": "9001"})
    assert given.public_url == given.replace(port=9002).public_url == "https://shop.example"
