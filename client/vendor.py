"""Third-party browser assets, from the npm registry, pinned: `python client/vendor.py`
(`make install` runs it). No Node needed.

client/vendor.json names each package's version, the registry's sha512 integrity of its
tarball and the files to take from it. Each tarball is fetched from the npm registry, checked
against its integrity (a mismatch stops with one line, nothing written), and the listed files
are written to client/static/vendor/<package>/ (git-ignored), which `livecart serve` serves
under /static/vendor/ from this origin. A package already there at its pinned version is
left alone.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import pathlib
import shutil
import sys
import tarfile
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
MANIFEST = HERE / "vendor.json"
VENDOR = HERE / "static" / "vendor"
REGISTRY = "https://registry.npmjs.org"


class VendorError(RuntimeError):
    pass


def tarball_url(package: str, version: str) -> str:
    bare = package.rsplit("/", 1)[-1]  # a scoped package's tarball is named without its scope
    return f"{REGISTRY}/{package}/-/{bare}-{version}.tgz"


def check_integrity(data: bytes, integrity: str, what: str) -> None:
    algorithm, _, expected = integrity.partition("-")
    if algorithm != "sha512":
        raise VendorError(f"{what}: only sha512 integrity is accepted, not {algorithm}")
    actual = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if actual != expected:
        raise VendorError(f"{what}: integrity mismatch (expected sha512-{expected}, got sha512-{actual})")


def install(package: str, pin: dict, target: pathlib.Path = VENDOR, fetch=None) -> bool:
    """Fetch, check and unpack one package; False when it was already in place."""
    folder = target / package
    stamp = folder / ".version"
    if stamp.exists() and stamp.read_text() == f"{pin['version']} {pin['integrity']}":
        return False
    url = tarball_url(package, pin["version"])
    data = (fetch or _download)(url)
    check_integrity(data, pin["integrity"], f"{package}@{pin['version']}")
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for name in pin["files"]:
            try:
                member = archive.getmember(f"package/{name}")
            except KeyError:
                raise VendorError(f"{package}@{pin['version']}: no {name} in its tarball") from None
            extracted = archive.extractfile(member)
            if extracted is None:
                raise VendorError(f"{package}@{pin['version']}: {name} is not a file")
            files[name] = extracted.read()
    if folder.exists():
        shutil.rmtree(folder)
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    stamp.write_text(f"{pin['version']} {pin['integrity']}")
    return True


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:  # noqa: S310 - the registry's https URL
        return response.read()


def main() -> int:
    pins = json.loads(MANIFEST.read_text())
    try:
        for package, pin in pins.items():
            if install(package, pin):
                print(f"vendored {package}@{pin['version']}")
    except (VendorError, OSError) as exc:
        print(f"client/vendor.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
