"""A helper process that reads export files while the importer stores what was read.

Parsing and checking records is most of an import's work, and it needs a processor, not the
database. Each helper is a fresh `python -m mtm.readers` talking over its stdin and stdout
in length-prefixed pickles: unlike multiprocessing, it never re-imports the program that
started it (a server, the CLI or a test runner), and never forks a threaded process.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import struct
import subprocess
import sys
from collections.abc import Iterator
from typing import Any, BinaryIO

from mtm.spotify_export import ExportError, SourceFile, read_for_import

_FRAME = struct.Struct("!Q")


def _send(stream: BinaryIO, value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_FRAME.pack(len(data)))
    stream.write(data)
    stream.flush()


def _receive(stream: BinaryIO) -> Any:
    head = stream.read(_FRAME.size)
    if len(head) < _FRAME.size:
        raise EOFError
    (size,) = _FRAME.unpack(head)
    return pickle.loads(stream.read(size))


class Helper:
    """One reading process."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mtm.readers"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def ask(self, source: SourceFile, kind: str, now: int) -> None:
        """Give it a file to read."""
        _send(self.process.stdin, (source, kind, now))

    def answer(self) -> tuple:
        """What it read (or the ExportError it met)."""
        try:
            ok, value = _receive(self.process.stdout)
        except (EOFError, pickle.UnpicklingError) as exc:
            raise RuntimeError("a reading helper process stopped unexpectedly") from exc
        if not ok:
            raise value
        return value

    def close(self) -> None:
        """Stop it."""
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# This process reads every MINE-th file itself (it also stores what is read), the helper
# the others: with one helper the two cores are about evenly busy, and memory stays under
# what a second helper would add.
MINE = 3


def read_all(files: list[tuple[SourceFile, str]], now: int) -> Iterator[tuple]:
    """read_for_import of every file, in order, shared between this process and a helper.

    The helper reads its next file while this process reads one of its own or stores what
    was read; each side holds at most one finished file, so memory stays flat.
    """
    theirs = [job for i, job in enumerate(files) if i % MINE != MINE - 1]
    helper = Helper()
    try:
        queue = iter(theirs)
        first = next(queue, None)
        if first is not None:
            helper.ask(first[0], first[1], now)
        for i, (source, kind) in enumerate(files):
            if i % MINE == MINE - 1:
                yield read_for_import(source, kind, now)
                continue
            result = helper.answer()
            job = next(queue, None)
            if job is not None:
                helper.ask(job[0], job[1], now)
            yield result
    finally:
        helper.close()


def _serve() -> None:
    """The helper's side: read files until stdin closes."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            source, kind, now = _receive(stdin)
        except EOFError:
            return
        try:
            _send(stdout, (True, read_for_import(source, kind, now)))
        except ExportError as exc:
            _send(stdout, (False, exc))
        except Exception as exc:  # noqa: BLE001 - reported to the importer, which stops
            _send(stdout, (False, RuntimeError(f"reading {source.name} failed: {exc}")))


if __name__ == "__main__":
    _serve()
