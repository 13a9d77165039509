"""The error every reader raises on malformed input (it names the file and the line), and
the one way readers take a text file in."""

from __future__ import annotations

import os


class DataFormatError(ValueError):
    """Malformed data; the message starts with ``file:line:``."""

    def __init__(self, path: str | os.PathLike, line: int | None, problem: str) -> None:
        where = f"{os.fspath(path)}:{line}" if line is not None else os.fspath(path)
        super().__init__(f"{where}: {problem}")
        self.path = os.fspath(path)
        self.line = line


def read_utf8(path: str | os.PathLike) -> str:
    """The text of a UTF-8 file (a leading byte-order mark dropped); other encodings raise
    DataFormatError naming the line of the first undecodable byte."""
    raw = open(path, "rb").read()  # noqa: SIM115 - closed by refcount at once
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataFormatError(
            path, line, f"not UTF-8 text (byte 0x{raw[err.start]:02x}); convert the file to UTF-8, "
            "e.g. iconv -f latin1 -t utf-8"
        ) from None
