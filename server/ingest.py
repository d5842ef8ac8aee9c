"""Broadcasting software's way in (nginx-rtmp's HTTP hooks under /ingest/), the media files served
in the embedded default (/hls/, /recordings/), and `livecart ingest-config nginx`.

nginx with the RTMP module takes RTMP from OBS or ffmpeg and calls these hooks (form-encoded POSTs,
the shared INGEST_SECRET in the hook URL's query); it remuxes H.264/AAC into HLS itself (no
re-encoding) under MEDIA_DIR, by playback id: on_publish answers 302 with the playback id as
`Location`, which nginx-rtmp takes as the stream's new name, so the key never names a file or URL.
"""
from __future__ import annotations

import hmac
import logging
import pathlib
import re
import textwrap
from urllib.parse import quote

from aiohttp import web

from livecart.models import media
from livecart.models.errors import DomainError, ErrorCode
from livecart.server.appkeys import BROKER, SETTINGS
from livecart.server.settings import Settings
from livecart.models import events
from livecart.subscriptions.broker import publish_to_stream

log = logging.getLogger("livecart.ingest")

HOOK_FIELD = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
# The playlist changes every segment: revalidate; a segment or a recording never changes under its name.
PLAYLIST_CACHE = "no-cache"
SEGMENT_CACHE = "public, max-age=31536000, immutable"
RECORDING_CACHE = "public, max-age=60"


# ---------------------------------------------------------------- hooks


async def announce(app: web.Application, stream_id: int) -> None:
    """A stream's status or broadcasting changed outside a mutation: shared query results are
    stale, and streamUpdated subscribers hear of it."""
    from livecart.server.query_cache import data_changed  # here: query_cache imports the schema, which `ingest-config` needs not

    await data_changed(app)
    await publish_to_stream(app[BROKER], stream_id, events.stream_updated(stream_id))


def _text(status: int, message: str, **headers: str) -> web.Response:
    return web.Response(status=status, text=message + "\n", content_type="text/plain", headers=headers)


async def _hook_form(request: web.Request) -> dict[str, str] | web.Response:
    """The hook's fields after its secret is checked: 403 without it, 400 for a malformed body."""
    secret = request.app[SETTINGS].ingest_secret
    given = request.query.get("secret", "")
    if not secret or not hmac.compare_digest(given.encode(), secret.encode()):
        log.warning("ingest hook %s refused: no or wrong shared secret", request.path)
        return _text(403, "Forbidden.")
    if request.content_type != "application/x-www-form-urlencoded":
        return _text(400, "A hook sends application/x-www-form-urlencoded fields.")
    try:
        form = await request.post()
    except ValueError:
        return _text(400, "Malformed hook body.")
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    for name in ("name", "clientid"):
        if not HOOK_FIELD.fullmatch(fields.get(name, "")):
            log.info("ingest hook %s: malformed %s", request.path, name)
            return _text(400, f"Malformed hook body: {name} is missing or not a name.")
    return fields


def _publisher(fields: dict[str, str]) -> str:
    """One RTMP connection of nginx: its client id (the same on publish, update and publish_done)."""
    return f"rtmp:{fields['clientid']}"


async def on_publish(request: web.Request) -> web.Response:
    fields = await _hook_form(request)
    if isinstance(fields, web.Response):
        return fields
    settings = request.app[SETTINGS]
    try:
        stream, changed = await media.start_publish(
            fields["name"], _publisher(fields), starts_stream=settings.publish_starts_stream
        )
    except DomainError as exc:
        status = 409 if exc.code is ErrorCode.CONFLICT else 403
        log.info("rtmp publish refused (%s): %s", status, exc.message)
        return _text(status, exc.message)
    if changed:
        await announce(request.app, stream.id)
    # nginx-rtmp renames the stream to the Location of a 3xx: HLS then goes by the playback id.
    return _text(302, "Publishing as the playback id.", Location=stream.playback_id)


async def on_publish_done(request: web.Request) -> web.Response:
    fields = await _hook_form(request)
    if isinstance(fields, web.Response):
        return fields
    stream = await media.stop_publish(_publisher(fields))
    if stream is not None:
        await announce(request.app, stream.id)
    return _text(200, "OK")


async def on_update(request: web.Request) -> web.Response:
    """Every few seconds while publishing: a publisher whose stream ended meanwhile is dropped."""
    fields = await _hook_form(request)
    if isinstance(fields, web.Response):
        return fields
    if fields.get("call") == "update_publish" and not await media.may_go_on(_publisher(fields)):
        return _text(403, "This stream has ended.")
    return _text(200, "OK")


async def on_record_done(request: web.Request) -> web.Response:
    """nginx finished a recording file. The recording is the HLS segments (kept as they are
    written), so this only acknowledges; its `path` is never used to build one."""
    fields = await _hook_form(request)
    if isinstance(fields, web.Response):
        return fields
    log.info("rtmp record done for %s", "a known stream" if await media.stream_of_publish_name(fields["name"]) else "no stream")
    return _text(200, "OK")


# ---------------------------------------------------------------- media files (embedded default)

HLS_NAME = re.compile(r"(?P<pid>[0-9a-f]{8,32})(?:\.m3u8|-\d{1,9}\.ts)")


async def hls_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    match = HLS_NAME.fullmatch(name)
    if not match:
        raise web.HTTPNotFound()
    files = media.MediaFiles.of(request.app[SETTINGS].media_dir, match["pid"])
    path = files.playlist if name.endswith(".m3u8") else files.hls_dir / f"{match['pid']}-{int(name[len(match['pid']) + 1:-3])}.ts"
    if not path.is_file():
        raise web.HTTPNotFound()
    if name.endswith(".m3u8"):
        return web.Response(body=path.read_bytes(), content_type=PLAYLIST_TYPE,
                            headers={"Cache-Control": PLAYLIST_CACHE, "Access-Control-Allow-Origin": "*"})
    return web.FileResponse(path, headers={"Content-Type": "video/mp2t", "Cache-Control": SEGMENT_CACHE,
                                           "Access-Control-Allow-Origin": "*"})


async def recording_file(request: web.Request) -> web.StreamResponse:
    pid = request.match_info["pid"]
    if not media.PLAYBACK_ID.fullmatch(pid):
        raise web.HTTPNotFound()
    path = media.MediaFiles.of(request.app[SETTINGS].media_dir, pid).recording
    if not path.is_file():
        raise web.HTTPNotFound()
    # aiohttp answers Range requests: a player seeks without downloading the whole file.
    return web.FileResponse(path, headers={"Content-Type": "video/mp4", "Cache-Control": RECORDING_CACHE,
                                           "Access-Control-Allow-Origin": "*"})


def add_ingest_routes(app: web.Application) -> None:
    router = app.router
    router.add_post("/ingest/on_publish", on_publish)
    router.add_post("/ingest/on_publish_done", on_publish_done)
    router.add_post("/ingest/on_update", on_update)
    router.add_post("/ingest/on_record_done", on_record_done)
    router.add_get(r"/hls/{name:[0-9a-f]{8,32}(\.m3u8|-[0-9]{1,9}\.ts)}", hls_file)
    router.add_get(r"/recordings/{pid:[0-9a-f]{8,32}}.mp4", recording_file)


# ---------------------------------------------------------------- livecart ingest-config nginx

HLS_APPLICATION = "livecart-hls"  # fed only by the ingest application's push, from this machine
RTMP_MODULE = pathlib.Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")  # Debian's libnginx-mod-rtmp


def nginx_config(settings: Settings, *, http_listen: str, hooks_url: str, run_dir: str) -> str:
    """A complete nginx.conf: RTMP in with the hooks, HLS out, and the HTTP server of the media."""
    if not settings.ingest_secret:
        raise ValueError("INGEST_SECRET is not set: the hooks would all be refused (set 16 or more characters)")
    from urllib.parse import urlsplit

    ingest = urlsplit(settings.ingest_url)
    application = ingest.path.strip("/") or "live"
    if application == HLS_APPLICATION or not re.fullmatch(r"[A-Za-z0-9_-]+", application):
        raise ValueError(f"INGEST_URL: {application!r} is not an nginx-rtmp application name")
    media_dir = pathlib.Path(settings.media_dir).resolve()
    run = pathlib.Path(run_dir).resolve()
    secret = quote(settings.ingest_secret, safe="")
    hooks = hooks_url.rstrip("/")
    load = (f"load_module {RTMP_MODULE};" if RTMP_MODULE.exists()
            else "include /etc/nginx/modules-enabled/*.conf;  # where your nginx lists its modules")
    return textwrap.dedent(f"""\
        # Generated by `livecart ingest-config nginx` for the settings in force.
        # Run it as: nginx -c THIS_FILE -e {run}/error.log   (MEDIA_DIR must be writable by nginx's workers)
        {load}
        worker_processes 1;
        pid {run}/nginx.pid;
        error_log {run}/error.log warn;
        events {{ worker_connections 1024; }}

        rtmp {{
            server {{
                listen {settings.ingest_port()};
                chunk_size 4096;
                notify_method post;
                application {application} {{
                    live on;
                    record off;
                    deny play all;  # viewers watch HLS; RTMP is only the way in
                    # livecart decides: the key's stream, refused keys, and the rename to the playback id.
                    on_publish {hooks}/ingest/on_publish?secret={secret};
                    on_publish_done {hooks}/ingest/on_publish_done?secret={secret};
                    on_update {hooks}/ingest/on_update?secret={secret};
                    notify_update_timeout 5s;
                    # The renamed stream goes on, as it is, to the application that writes HLS: the
                    # module's HLS would otherwise still name its files by the key it was published with.
                    push rtmp://127.0.0.1:{settings.ingest_port()}/{HLS_APPLICATION};
                }}
                application {HLS_APPLICATION} {{
                    live on;
                    allow publish 127.0.0.1;
                    deny publish all;
                    deny play all;
                    on_record_done {hooks}/ingest/on_record_done?secret={secret};
                    # H.264/AAC remuxed, not re-encoded, into 1 s segments (cut at key frames: set the
                    # encoder's key frame interval to 1 s). Every segment is kept: they are the
                    # recording, which livecart assembles on SAVE and removes on DELETE.
                    hls on;
                    hls_path {media_dir}/hls;
                    hls_nested off;
                    hls_fragment_naming sequential;
                    hls_fragment 1s;
                    hls_playlist_length 6s;
                    hls_continuous on;
                    hls_cleanup off;
                }}
            }}
        }}

        http {{
            access_log off;
            client_body_temp_path {run}/client_body;
            proxy_temp_path {run}/proxy;
            fastcgi_temp_path {run}/fastcgi;
            uwsgi_temp_path {run}/uwsgi;
            scgi_temp_path {run}/scgi;
            types {{
                {PLAYLIST_TYPE} m3u8;
                video/mp2t ts;
                video/mp4 mp4;
            }}
            server {{
                listen {http_listen};
                root {media_dir};
                location ~ "^/hls/[0-9a-f]{{8,32}}\\.m3u8$" {{
                    add_header Cache-Control "{PLAYLIST_CACHE}";
                    add_header Access-Control-Allow-Origin *;
                }}
                location ~ "^/hls/[0-9a-f]{{8,32}}-[0-9]+\\.ts$" {{
                    add_header Cache-Control "{SEGMENT_CACHE}";
                    add_header Access-Control-Allow-Origin *;
                }}
                location ~ "^/recordings/[0-9a-f]{{8,32}}\\.mp4$" {{
                    add_header Cache-Control "{RECORDING_CACHE}";
                    add_header Access-Control-Allow-Origin *;
                }}
                location / {{ return 404; }}
            }}
        }}
        """)
