"""Pinned browser libraries: check the committed copies, or fetch them again from npm."""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from mtm.config import STATIC_DIR

# Where the app serves /static from (see mtm.config.STATIC_DIR): fetched files land there.
DEFAULT_STATIC_DIR = STATIC_DIR
NPM_REGISTRY = "https://registry.npmjs.org"


@dataclass(frozen=True)
class VendoredFile:
    """One file taken from one pinned npm tarball."""

    name: str
    package: str
    version: str
    member: str
    dest: str
    sha256: str

    def tarball_url(self, registry: str = NPM_REGISTRY) -> str:
        """Where npm serves this package's tarball (unscoped packages only)."""
        return f"{registry.rstrip('/')}/{self.package}/-/{self.package}-{self.version}.tgz"


VENDORED: tuple[VendoredFile, ...] = (
    VendoredFile(
        name="htmx",
        package="htmx.org",
        version="4.0.1",
        member="package/dist/htmx.min.js",
        dest="vendor/htmx-4.0.1.min.js",
        sha256="a0abb04f2f45a1f89d1d4844023245537e5e6014c87b144553e0607b4cc32130",
    ),
    VendoredFile(
        name="Chart.js",
        package="chart.js",
        version="4.6.1",
        member="package/dist/chart.umd.min.js",
        dest="vendor/chart-4.6.1.umd.min.js",
        sha256="87364cc2b2a76a6684929e7d6b80b18a897794db38400caff1fcf1791c6925d2",
    ),
)


class VendorError(Exception):
    """A vendored file could not be fetched or did not match its pin."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check(static_dir: Path, files: tuple[VendoredFile, ...] = VENDORED) -> list[str]:
    """Return one message per vendored file that is missing or differs from its pin."""
    problems = []
    for item in files:
        path = static_dir / item.dest
        if not path.is_file():
            problems.append(f"{item.name}: missing {path}")
            continue
        actual = _sha256(path.read_bytes())
        if actual != item.sha256:
            problems.append(
                f"{item.name}: {path} has sha256 {actual}, expected {item.sha256}"
            )
    return problems


def _extract_member(tarball: bytes, member: str) -> bytes:
    """Return one regular file's bytes from a gzipped tarball, without touching the disk."""
    try:
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
            info = archive.getmember(member)
            if not info.isfile():
                raise VendorError(f"{member} is not a regular file in the tarball")
            handle = archive.extractfile(info)
            if handle is None:
                raise VendorError(f"{member} cannot be read from the tarball")
            return handle.read()
    except KeyError as exc:
        raise VendorError(f"{member} is not in the tarball") from exc
    except tarfile.TarError as exc:
        raise VendorError(f"the tarball is unreadable: {exc}") from exc


def _write_atomically(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same directory so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def fetch(
    static_dir: Path,
    registry: str = NPM_REGISTRY,
    *,
    client: httpx.Client | None = None,
    files: tuple[VendoredFile, ...] = VENDORED,
) -> None:
    """Download each pinned tarball, verify the file's sha256, then write it into static_dir."""
    own_client = client is None
    http = client or httpx.Client(timeout=60.0, follow_redirects=True)
    try:
        # Verify everything first so a bad second file leaves the first untouched too.
        verified: list[tuple[Path, bytes]] = []
        for item in files:
            url = item.tarball_url(registry)
            try:
                response = http.get(url)
                response.raise_for_status()
            except httpx.HTTPError as exc:
                raise VendorError(f"{item.name}: cannot download {url}: {exc}") from exc
            data = _extract_member(response.content, item.member)
            actual = _sha256(data)
            if actual != item.sha256:
                raise VendorError(
                    f"{item.name}: {item.member} from {url} has sha256 {actual}, "
                    f"expected {item.sha256}; nothing written"
                )
            verified.append((static_dir / item.dest, data))
    finally:
        if own_client:
            http.close()
    for path, data in verified:
        _write_atomically(path, data)


def main(argv: list[str] | None = None, static_dir: Path | None = None) -> int:
    """Entry point for `mtm vendor [--check]`; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog="mtm vendor", description="Check or re-fetch the pinned browser libraries."
    )
    parser.add_argument("--check", action="store_true",
                        help="only verify the files on disk against their pinned sha256")
    parser.add_argument("--registry", default=NPM_REGISTRY, help="npm registry base URL")
    args = parser.parse_args(argv)
    target = static_dir or DEFAULT_STATIC_DIR

    if args.check:
        problems = check(target)
        for problem in problems:
            print(problem, file=sys.stderr)
        if not problems:
            for item in VENDORED:
                print(f"ok {item.name} {item.version} {item.dest}")
        return 1 if problems else 0

    try:
        fetch(target, args.registry)
    except VendorError as exc:
        print(exc, file=sys.stderr)
        return 1
    for item in VENDORED:
        print(f"wrote {item.name} {item.version} -> {target / item.dest}")
    return 0
