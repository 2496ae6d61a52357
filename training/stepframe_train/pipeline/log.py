"""The progress log every stage writes to: a function of one line."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

Log = Callable[[str], None]


def quiet(_: str) -> None:
    """A log that drops everything (the second process of a data-parallel run, tests)."""


def file_log(path: Path) -> Log:
    """Prints each line with the time and appends it to `path`."""
    def log(message: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {message}"
        print(line, flush=True)
        with path.open("a") as f:
            f.write(line + "\n")
    return log
