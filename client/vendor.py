"""Third-party browser files the pages use, installed by `make install` from the npm registry
without Node: each package of client/vendor.json at its pinned version, its tarball checked
against the pinned integrity (npm's `dist.integrity`, SRI sha512), and only the files listed
copied to client/static/vendor/<package>/ (git-ignored; served by livecart under /static/).

    python client/vendor.py          # what is missing or at another version; --force: all again

NPM_CONFIG_REGISTRY (npm's own variable) points it at a mirror.
"""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import pathlib
import shutil
import sys
import tarfile
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
PINNED = HERE / "vendor.json"
VENDOR = HERE / "static" / "vendor"
DEFAULT_REGISTRY = "https://registry.npmjs.org/"


def tarball_url(registry: str, package: str, version: str) -> str:
    return f"{registry.rstrip('/')}/{package}/-/{package.rsplit('/', 1)[-1]}-{version}.tgz"


def check_integrity(data: bytes, integrity: str) -> None:
    algorithm, _, expected = integrity.partition("-")
    if algorithm != "sha512":
        raise ValueError(f"unsupported integrity {algorithm!r}: pin a sha512")
    actual = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if actual != expected:
        raise ValueError(f"integrity mismatch: expected {integrity}, got sha512-{actual}")


def install(package: str, pin: dict, registry: str, force: bool = False) -> bool:
    """Installs one package's files; False when they were there already at this pin."""
    target = VENDOR / package
    stamp = target / ".pin"
    wanted = f"{pin['version']} {pin['integrity']}"
    if not force and stamp.is_file() and stamp.read_text().strip() == wanted \
            and all((target / pathlib.PurePosixPath(f).name).is_file() for f in pin["files"]):
        return False
    url = tarball_url(registry, package, pin["version"])
    with urllib.request.urlopen(url, timeout=120) as response:
        data = response.read()
    check_integrity(data, pin["integrity"])
    staging = target.with_name(f".{target.name}.new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for name in pin["files"]:
            # Only the files pinned, by their exact names in the tarball (which npm roots at package/).
            member = archive.getmember(f"package/{name}")
            if not member.isfile():
                raise ValueError(f"{package}: {name} is not a file in the tarball")
            (staging / pathlib.PurePosixPath(name).name).write_bytes(archive.extractfile(member).read())
    (staging / ".pin").write_text(wanted + "\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return True


def main(argv: list[str]) -> int:
    force = "--force" in argv
    registry = os.environ.get("NPM_CONFIG_REGISTRY") or os.environ.get("npm_config_registry") or DEFAULT_REGISTRY
    pins = json.loads(PINNED.read_text())
    for package, pin in pins.items():
        try:
            done = install(package, pin, registry, force)
        except (OSError, ValueError, KeyError, tarfile.TarError) as exc:
            print(f"vendor: {package}@{pin.get('version')}: {exc}", file=sys.stderr)
            return 1
        print(f"vendor: {package}@{pin['version']} {'installed' if done else 'up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
