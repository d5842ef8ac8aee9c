"""client/vendor.py: pinned npm tarballs, checked against their sha512 integrity before anything
is written (tarballs made here: no registry needed to test the checks)."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile

import pytest

from livecart.client import vendor


def tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def test_a_pinned_tarball_is_checked_then_its_files_written(tmp_path):
    data = tarball({"dist/x.min.js": b"x()", "README.md": b"no"})
    asked = []
    pin = {"version": "1.2.3", "integrity": integrity(data), "files": ["dist/x.min.js"]}
    assert vendor.install("@scope/x", pin, tmp_path, fetch=lambda url: asked.append(url) or data)
    assert asked == ["https://registry.npmjs.org/@scope/x/-/x-1.2.3.tgz"]
    assert (tmp_path / "@scope/x/dist/x.min.js").read_bytes() == b"x()"
    assert not (tmp_path / "@scope/x/README.md").exists()
    assert not vendor.install("@scope/x", pin, tmp_path, fetch=lambda url: pytest.fail("fetched again"))


def test_a_tarball_that_is_not_the_pinned_one_writes_nothing(tmp_path):
    data = tarball({"x.js": b"x()"})
    pin = {"version": "1.0.0", "integrity": integrity(b"something else"), "files": ["x.js"]}
    with pytest.raises(vendor.VendorError, match="integrity mismatch"):
        vendor.install("x", pin, tmp_path, fetch=lambda url: data)
    assert not (tmp_path / "x").exists()
    with pytest.raises(vendor.VendorError, match="no missing.js"):
        vendor.install("x", {**pin, "integrity": integrity(data), "files": ["missing.js"]}, tmp_path, fetch=lambda url: data)


def test_every_pin_is_exact_and_sha512():
    pins = json.loads(vendor.MANIFEST.read_text())
    assert {"graphiql", "react", "react-dom"} <= set(pins)
    for pin in pins.values():
        assert pin["version"][0].isdigit() and pin["integrity"].startswith("sha512-") and pin["files"]
