"""The pinned browser libraries: committed copies match, fetch verifies before it writes."""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
from pathlib import Path

import httpx
import pytest

from mtm import vendor

REPO_STATIC = Path(__file__).resolve().parents[1] / "static"


def _tarball(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _pin(content: bytes) -> vendor.VendoredFile:
    return vendor.VendoredFile(
        name="fake",
        package="fake-lib",
        version="1.2.3",
        member="package/dist/fake.min.js",
        dest="vendor/fake-1.2.3.min.js",
        sha256=hashlib.sha256(content).hexdigest(),
    )


def _client(routes: dict[str, bytes], seen: list[str]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        body = routes.get(str(request.url))
        return httpx.Response(200, content=body) if body is not None else httpx.Response(404)

    return httpx.Client(transport=httpx.MockTransport(handler))


def test_committed_files_match_their_pins() -> None:
    assert vendor.check(REPO_STATIC) == []


def test_pins_cover_htmx_and_chartjs() -> None:
    dests = {item.dest for item in vendor.VENDORED}
    assert dests == {"vendor/htmx-4.0.1.min.js", "vendor/chart-4.6.1.umd.min.js"}


def test_check_detects_a_tampered_copy(tmp_path: Path) -> None:
    shutil.copytree(REPO_STATIC / "vendor", tmp_path / "vendor")
    with (tmp_path / "vendor" / "htmx-4.0.1.min.js").open("ab") as handle:
        handle.write(b"\nalert(1)")
    problems = vendor.check(tmp_path)
    assert len(problems) == 1
    assert "htmx" in problems[0] and "sha256" in problems[0]


def test_check_reports_missing_files(tmp_path: Path) -> None:
    problems = vendor.check(tmp_path)
    assert len(problems) == len(vendor.VENDORED)
    assert all("missing" in problem for problem in problems)


def test_fetch_writes_the_verified_member(tmp_path: Path) -> None:
    content = b"/* fake lib */ var fake = 1;\n"
    pin = _pin(content)
    tarball = _tarball({pin.member: content, "package/README.md": b"not wanted"})
    url = "https://registry.example/fake-lib/-/fake-lib-1.2.3.tgz"
    seen: list[str] = []
    with _client({url: tarball}, seen) as client:
        vendor.fetch(tmp_path, "https://registry.example/", client=client, files=(pin,))
    assert seen == [url]
    assert (tmp_path / pin.dest).read_bytes() == content
    assert vendor.check(tmp_path, files=(pin,)) == []
    # Only the one member is written, and no temporary files are left behind.
    assert sorted(p.name for p in (tmp_path / "vendor").iterdir()) == ["fake-1.2.3.min.js"]


def test_fetch_refuses_a_wrong_hash_and_writes_nothing(tmp_path: Path) -> None:
    pin = _pin(b"the real thing")
    tarball = _tarball({pin.member: b"something else"})
    url = "https://registry.example/fake-lib/-/fake-lib-1.2.3.tgz"
    with _client({url: tarball}, []) as client, pytest.raises(vendor.VendorError, match="sha256"):
        vendor.fetch(tmp_path, "https://registry.example", client=client, files=(pin,))
    assert list(tmp_path.iterdir()) == []


def test_fetch_leaves_an_existing_copy_alone_on_mismatch(tmp_path: Path) -> None:
    good = b"the real thing"
    pin = _pin(good)
    (tmp_path / "vendor").mkdir()
    (tmp_path / pin.dest).write_bytes(good)
    url = "https://registry.example/fake-lib/-/fake-lib-1.2.3.tgz"
    with _client({url: _tarball({pin.member: b"evil"})}, []) as client, pytest.raises(
        vendor.VendorError
    ):
        vendor.fetch(tmp_path, "https://registry.example", client=client, files=(pin,))
    assert (tmp_path / pin.dest).read_bytes() == good


def test_fetch_reports_a_missing_member(tmp_path: Path) -> None:
    pin = _pin(b"x")
    url = "https://registry.example/fake-lib/-/fake-lib-1.2.3.tgz"
    with _client({url: _tarball({"package/other.js": b"x"})}, []) as client, pytest.raises(
        vendor.VendorError, match="not in the tarball"
    ):
        vendor.fetch(tmp_path, "https://registry.example", client=client, files=(pin,))
    assert list(tmp_path.iterdir()) == []


def test_fetch_verifies_the_real_pins_against_a_mock_registry(tmp_path: Path) -> None:
    routes = {}
    for item in vendor.VENDORED:
        data = (REPO_STATIC / item.dest).read_bytes()
        routes[item.tarball_url()] = _tarball({item.member: data})
    with _client(routes, []) as client:
        vendor.fetch(tmp_path, client=client)
    assert vendor.check(tmp_path) == []


def test_main_check_uses_the_given_static_dir(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert vendor.main(["--check"], static_dir=REPO_STATIC) == 0
    assert vendor.main(["--check"], static_dir=tmp_path) == 1
    assert "missing" in capsys.readouterr().err
