"""The rows of a run proven chunk by chunk, kept on local disk from the digest pass for the row pass.

The digest pass reads, hashes and builds every row's record anyway; keeping them means each side reads its
table once, and the row pass only streams this file, sending the records of the chunks whose digests differ.
A record is its chunk id and length (fixed width, so a row of a proven chunk is skipped unparsed), then the
row's PK and value as JSON. The file holds every row's record once: about the size of the records the run
would publish row by row.
"""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson

_HEADER = struct.Struct(">QI")


class Spill:
    """Records appended in the order read, then read back once per row pass. ``path``: where a scan keeps them
    for a resumed run (written to ``<path>.tmp`` and renamed once whole); None: an unnamed temporary file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._file: BinaryIO = (
            open(path.with_name(path.name + ".tmp"), "w+b") if path is not None else tempfile.TemporaryFile()  # noqa: SIM115
        )
        self.rows = 0

    @classmethod
    def kept(cls, path: Path) -> Spill | None:
        """The spill a scan kept whole at ``path`` (a run resumed), or None."""
        if not path.is_file():
            return None
        spill = cls.__new__(cls)
        spill.path, spill._file, spill.rows = path, open(path, "rb"), -1  # noqa: SIM115
        return spill

    def add(self, chunk_id: int, pk: str, value: dict[str, Any]) -> None:
        payload = orjson.dumps((pk, value))
        self._file.write(_HEADER.pack(chunk_id, len(payload)))
        self._file.write(payload)
        self.rows += 1

    def keep(self) -> None:
        """The digest pass is whole: a scan's spill takes its name, for a resumed run to find."""
        self._file.flush()
        if self.path is not None:
            os.replace(self._file.name, self.path)

    def rows_of(self, chunks: frozenset[int]) -> Iterator[tuple[int, str, dict[str, Any]]]:
        """(chunk id, pk, value) of every record in ``chunks``, in the order they were read."""
        self._file.flush()
        self._file.seek(0)
        header, read = _HEADER.size, self._file.read
        while True:
            head = read(header)
            if len(head) < header:
                return
            chunk_id, length = _HEADER.unpack(head)
            payload = read(length)
            if chunk_id in chunks:
                pk, value = orjson.loads(payload)
                yield chunk_id, pk, value

    def close(self, remove: bool = False) -> None:
        self._file.close()
        if remove and self.path is not None:
            for name in (self.path, self.path.with_name(self.path.name + ".tmp")):
                name.unlink(missing_ok=True)
