"""The error every reader raises on malformed input: it names the file and the line."""

from __future__ import annotations

import os


class DataFormatError(ValueError):
    """Malformed data; the message starts with ``file:line:``."""

    def __init__(self, path: str | os.PathLike, line: int | None, problem: str) -> None:
        where = f"{os.fspath(path)}:{line}" if line is not None else os.fspath(path)
        super().__init__(f"{where}: {problem}")
        self.path = os.fspath(path)
        self.line = line
