"""Settings: read once from the environment into one validated, immutable object."""
from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from urllib.parse import urlsplit


class SettingsError(ValueError):
    """A bad environment value; the message names the variable in one line."""


@dataclasses.dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite://./var/livecart.sqlite3"
    redis_url: str | None = None
    # On: REDIS_URL names one node of a Redis Cluster (the others are discovered from it); events
    # then go by sharded pub/sub, each stream's channel on the shard that owns its slot.
    redis_cluster: bool = False
    host: str = "127.0.0.1"
    port: int = 8000
    token_ttl_seconds: int = 30 * 24 * 3600
    # Empty: the address served (HOST and PORT), so setting PORT alone moves the pages' links too.
    public_url: str = ""
    login_url: str = "/login"
    playback_url_template: str = "{public_url}/hls/{playback_id}.m3u8"
    recording_url_template: str = "{public_url}/recordings/{playback_id}.mp4"
    ingest_url: str = "rtmp://127.0.0.1:1935/live"
    # Live video (issue 14): where HLS segments and recordings are written and served from, the
    # secret nginx-rtmp's hooks carry (empty: every /ingest/ hook is refused), and whether a
    # publish with a SCHEDULED stream's key makes it LIVE.
    media_dir: str = "./var/media"
    ingest_secret: str = ""
    publish_starts_stream: bool = True
    viewer_session_ttl_seconds: int = 45
    viewer_sweep_interval_seconds: int = 5  # how often lapsed viewer sessions are closed
    database_pool_size: int = 20
    # A statement not answered in this long is abandoned (SERVICE_UNAVAILABLE); 0: wait for ever.
    database_statement_timeout_seconds: float = 30.0
    environment: str = "development"
    # Off only to measure the baseline (bench/): every subscriber reads and executes on its own.
    subscription_sharing: bool = True
    # Durable events (issue 15): how long the event log keeps a stream's events (and at least how
    # many of its newest), and a fault hook for the tests only: the process exits right after a
    # change with logged events commits, before it publishes them (the relay must deliver them).
    event_retention_seconds: int = 24 * 3600
    event_keep_per_stream: int = 10_000
    fault_exit_before_publish: bool = False
    # Hardening (issue 9). None means "follows ENVIRONMENT": on in development, off in production.
    graphiql: bool | None = None
    introspection: bool | None = None
    cors_origins: str = ""  # comma-separated allow-list of origins, e.g. https://shop.example
    trusted_proxies: str = ""  # comma-separated peer addresses whose X-Forwarded-For is believed
    log_format: str = "text"  # text | json
    rate_limits: bool = True  # off only for load tests run from one address
    websocket_connections_per_address: int = 50  # per process: open sockets from one client address
    websocket_max_message_bytes: int = 64 * 1024  # a larger incoming message closes the socket (1009)
    websocket_subscriptions_per_connection: int = 50  # the next one is answered TOO_MANY_SUBSCRIPTIONS
    websocket_init_timeout_seconds: int = 10  # connection_init must arrive within this, else close 4408
    shutdown_timeout_seconds: int = 15
    workers: int = 1
    image_max_bytes: int = 2 * 1024 * 1024  # a product image upload larger than this is refused (issue 18)
    image_dir: str = "./var/images"  # where uploaded product images are kept, served at /images/
    # Shared query results (server/query_cache.py): how long one may serve when no write of ours
    # changed the data since; it bounds how late writes made outside livecart show. 0: off.
    query_cache_seconds: float = 1.0
    # Issue 16: the legacy graphql-ws `ka` interval (0: none), the heartbeat of subscriptions over
    # HTTP (SSE, multipart), the trusted-documents manifest
    # (only its documents run), and OpenTelemetry tracing (exported over OTLP when the standard
    # OTEL_EXPORTER_OTLP_* variables name a collector).
    websocket_keepalive_seconds: float = 15.0
    http_stream_heartbeat_seconds: float = 12.0
    trusted_documents: str = ""
    tracing: bool = False

    # Whether public_url was derived from HOST/PORT (not given): replace() derives it again.
    public_url_derived: bool = dataclasses.field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.public_url:
            object.__setattr__(self, "public_url", served_url(self.host, self.port))
            object.__setattr__(self, "public_url_derived", True)

    @property
    def served_url(self) -> str:
        """Where this process answers, as a browser on this machine reaches it."""
        return served_url(self.host, self.port)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite://")

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def graphiql_enabled(self) -> bool:
        return not self.is_production if self.graphiql is None else self.graphiql

    @property
    def introspection_enabled(self) -> bool:
        return not self.is_production if self.introspection is None else self.introspection

    @property
    def cors_origin_list(self) -> tuple[str, ...]:
        return _comma_list(self.cors_origins)

    @property
    def trusted_proxy_list(self) -> tuple[str, ...]:
        return _comma_list(self.trusted_proxies)

    def login_url_for(self, return_path: str | None) -> str:
        from urllib.parse import quote

        from livecart.server.return_path import HOME, safe_return_path

        return_path = safe_return_path(return_path) if return_path else None
        if not return_path or return_path == HOME:
            return self.login_url

        sep = "&" if "?" in self.login_url else "?"
        return f"{self.login_url}{sep}return={quote(return_path, safe='/')}"

    def playback_url(self, playback_id: str) -> str:
        return self.playback_url_template.format(public_url=self.public_url, playback_id=playback_id)

    def recording_url(self, playback_id: str) -> str:
        return self.recording_url_template.format(public_url=self.public_url, playback_id=playback_id)

    def ingest_port(self) -> int:
        """The RTMP port of INGEST_URL (1935 when it names none)."""
        return urlsplit(self.ingest_url).port or 1935

    def replace(self, **changes) -> "Settings":
        if self.public_url_derived and "public_url" not in changes:
            changes["public_url"] = ""  # follows the new HOST/PORT
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        values: dict = {}
        for field in dataclasses.fields(cls):
            if not field.init:
                continue
            name = field.name.upper()
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            values[field.name] = _parse(name, field.type, raw)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        scheme = urlsplit(self.database_url).scheme
        if scheme not in ("sqlite", "postgres", "postgresql", "asyncpg"):
            raise SettingsError(
                f"DATABASE_URL: unsupported scheme {scheme!r}; use sqlite://PATH or postgres://USER@HOST/DB"
            )
        if self.redis_url is not None and urlsplit(self.redis_url).scheme not in ("redis", "rediss", "unix"):
            raise SettingsError("REDIS_URL: must start with redis://, rediss:// or unix://")
        if self.redis_cluster:
            self._validate_cluster_url()
        if not 0 < self.port < 65536:
            raise SettingsError(f"PORT: {self.port} is not a TCP port (1-65535)")
        if self.viewer_sweep_interval_seconds <= 0:
            raise SettingsError("VIEWER_SWEEP_INTERVAL_SECONDS: must be a positive whole number")
        for name in (
            "token_ttl_seconds", "viewer_session_ttl_seconds", "database_pool_size",
            "websocket_connections_per_address", "websocket_max_message_bytes", "websocket_subscriptions_per_connection",
            "websocket_init_timeout_seconds", "shutdown_timeout_seconds", "workers", "image_max_bytes",
        ):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name.upper()}: must be a positive whole number")
        if self.tracing:
            try:
                import opentelemetry.sdk.trace  # noqa: F401
            except ImportError:
                raise SettingsError("TRACING: on needs the OpenTelemetry SDK: pip install 'livecart[tracing]'") from None
        if self.http_stream_heartbeat_seconds <= 0:
            raise SettingsError("HTTP_STREAM_HEARTBEAT_SECONDS: must be a positive number")
        if self.trusted_documents:
            from livecart.server.persisted import ManifestError, load_manifest

            try:
                load_manifest(self.trusted_documents)
            except ManifestError as exc:
                raise SettingsError(str(exc)) from None
        if urlsplit(self.public_url).scheme not in ("http", "https"):
            raise SettingsError("PUBLIC_URL: must be an http:// or https:// URL")
        for name in ("playback_url_template", "recording_url_template"):
            try:
                getattr(self, name).format(public_url="", playback_id="")
            except (KeyError, IndexError, ValueError) as exc:
                raise SettingsError(
                    f"{name.upper()}: only {{public_url}} and {{playback_id}} may be used ({exc})"
                ) from None
        if 0 < len(self.ingest_secret) < 16:
            raise SettingsError("INGEST_SECRET: at least 16 characters (or empty to refuse every hook)")
        if not self.media_dir.strip():
            raise SettingsError("MEDIA_DIR: must name a folder")
        if self.environment not in ("development", "production"):
            raise SettingsError("ENVIRONMENT: must be development or production")
        if self.log_format not in ("text", "json"):
            raise SettingsError("LOG_FORMAT: must be text or json")
        for origin in self.cors_origin_list:
            if origin != "*" and urlsplit(origin).scheme not in ("http", "https"):
                raise SettingsError(f"CORS_ORIGINS: {origin!r} is not an http(s) origin")


    def _validate_cluster_url(self) -> None:
        if not self.redis_url:
            raise SettingsError("REDIS_CLUSTER: on needs REDIS_URL, naming one node of the cluster")
        url = urlsplit(self.redis_url)
        if url.scheme not in ("redis", "rediss"):
            raise SettingsError("REDIS_CLUSTER: REDIS_URL must be redis:// or rediss://HOST:PORT (a cluster node's address)")
        if url.path.strip("/") not in ("", "0"):
            raise SettingsError("REDIS_CLUSTER: a Redis Cluster has database 0 only; REDIS_URL must name /0 or none")


def served_url(host: str, port: int) -> str:
    """http://HOST:PORT, with a wildcard address (listen everywhere) read as this machine."""
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    return f"http://{host}:{port}"


def _comma_list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip().rstrip("/") for item in raw.split(",") if item.strip())


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _parse(name: str, annotation: str, raw: str):
    if annotation.startswith("bool"):
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise SettingsError(f"{name}: {raw!r} is not on/off (true/false, 1/0)")
    if annotation == "int":
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{name}: {raw!r} is not a whole number") from None
    if annotation == "float":
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{name}: {raw!r} is not a number") from None
        if not math.isfinite(value) or value < 0:
            raise SettingsError(f"{name}: {raw!r} must be zero or more")
        return value
    return raw
