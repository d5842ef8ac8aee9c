"""Fetches the pinned npm packages of client/vendor.json into client/static/vendor/ (git-ignored).

No Node needed: each package's tarball comes from the npm registry (NPM_REGISTRY, default
https://registry.npmjs.org), is checked against the pinned `integrity` (the registry's own
sha512) before anything is unpacked, and only the listed `files` are kept, under
client/static/vendor/<package>/<file>. Nothing loads from a CDN at run time.

    python client/vendor.py            # what `make install` runs; fetches only what is missing
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import pathlib
import sys
import tarfile
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
PINS = HERE / "vendor.json"
TARGET = HERE / "static" / "vendor"


class VendorError(RuntimeError):
    pass


def tarball_url(registry: str, package: str, version: str) -> str:
    name = package.rsplit("/", 1)[-1]  # a scoped package's tarball is named without its scope
    return f"{registry.rstrip('/')}/{package}/-/{name}-{version}.tgz"


def check_integrity(data: bytes, integrity: str, package: str) -> None:
    algorithm, _, expected = integrity.partition("-")
    if algorithm != "sha512":
        raise VendorError(f"{package}: only sha512 integrity is accepted, not {algorithm!r}")
    actual = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if actual != expected:
        raise VendorError(f"{package}: the tarball's sha512 does not match vendor.json (got sha512-{actual})")


def unpack(data: bytes, package: str, files: list[str], into: pathlib.Path) -> None:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for name in files:
            member = archive.getmember(f"package/{name}")  # npm tarballs hold everything under package/
            extracted = archive.extractfile(member)
            if extracted is None:
                raise VendorError(f"{package}: {name} is not a file in the tarball")
            destination = into / package / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(extracted.read())


def missing(package: str, pin: dict, into: pathlib.Path) -> bool:
    stamp = into / package / ".version"
    present = stamp.exists() and stamp.read_text().strip() == pin["integrity"]
    return not present or not all((into / package / name).exists() for name in pin["files"])


def fetch(registry: str, package: str, pin: dict, into: pathlib.Path) -> None:
    url = tarball_url(registry, package, pin["version"])
    with urllib.request.urlopen(url, timeout=60) as response:
        data = response.read()
    check_integrity(data, pin["integrity"], package)
    unpack(data, package, pin["files"], into)
    (into / package / ".version").write_text(pin["integrity"] + "\n")


def main() -> int:
    registry = os.environ.get("NPM_REGISTRY", "https://registry.npmjs.org")
    pins = json.loads(PINS.read_text())
    for package, pin in pins.items():
        if not missing(package, pin, TARGET):
            continue
        try:
            fetch(registry, package, pin, TARGET)
        except (OSError, KeyError, tarfile.TarError, VendorError) as exc:
            print(f"vendor: {package} {pin['version']}: {exc}", file=sys.stderr)
            return 1
        print(f"vendor: {package} {pin['version']} (integrity checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
