"""Where a login may send the browser afterwards: the one decision, made here (issue 13).

The login page is served with this function's answer in a <meta> tag (server/pages.py) and goes
exactly there; Settings.login_url_for passes its return paths through it too. Only a path on
this site is kept: resolved the way a browser resolves it (tabs and newlines dropped, `\\` read
as `/`, `.` and `..` segments, also written `%2e`, removed), it must start with one `/` and no
second `/` or `\\`. Anything else (`/.//evil.example` resolves to `//evil.example`, a
scheme-relative URL to another site) becomes `/`.
"""
from __future__ import annotations

import re

HOME = "/"
_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")
_DOT = {".", "%2e"}
_DOT_DOT = {"..", ".%2e", "%2e.", "%2e%2e"}


def _without_dot_segments(path: str) -> str:
    """RFC 3986 remove_dot_segments, with WHATWG's percent-encoded dots."""
    segments = path.split("/")[1:]  # path starts with "/"
    out: list[str] = []
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        lowered = segment.lower()
        if lowered in _DOT:
            if last:
                out.append("")
        elif lowered in _DOT_DOT:
            if out:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(segment)
    return "/" + "/".join(out)


def safe_return_path(value: str | None) -> str:
    if not value or not isinstance(value, str):
        return HOME
    value = _TAB_OR_NEWLINE.sub("", value).strip(" \x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f"
                                               "\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return HOME
    path, hash_mark, fragment = value.partition("#")
    path, question_mark, query = path.partition("?")
    path = path.replace("\\", "/")  # browsers read a backslash in an http(s) path as a slash
    if not path.startswith("/") or path.startswith("//"):
        return HOME
    path = _without_dot_segments(path)
    if path.startswith("//"):
        return HOME
    return path + question_mark + query + hash_mark + fragment
