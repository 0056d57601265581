"""The `mtm` command line."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mtm.cli import build_parser, main


def test_serve_defaults() -> None:
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.demo) == ("127.0.0.1", 8000, False)


def test_demo_data_writes_the_requested_history(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("MTM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MTM_SECRET_KEY", "k")
    assert main(["demo-data", "--plays", "3000", "--years", "1", "--seed", "3"]) == 0
    assert "Wrote 3,000 plays" in capsys.readouterr().out
    with sqlite3.connect(tmp_path / "mtm.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM plays").fetchone()[0] == 3000
    # Running it again replaces the history instead of adding to it.
    assert main(["demo-data", "--plays", "1000", "--years", "1"]) == 0
    with sqlite3.connect(tmp_path / "mtm.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM plays").fetchone()[0] == 1000


def test_demo_data_rejects_bad_numbers(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("MTM_DATA_DIR", str(tmp_path))
    assert main(["demo-data", "--plays", "-1"]) == 2
    assert "--plays" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo-data", "--plays", "many"])


def test_vendor_check_passes_on_the_committed_files(capsys) -> None:
    assert main(["vendor", "--check"]) == 0
