"""Reading a library's config.json so that every option either takes effect or is refused by name."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from .errors import CheckpointError

_MISSING = object()


class ConfigReader:
    """Options are taken one by one; `finish()` refuses whatever was neither taken nor declared inert.

    A refusal names the file and the option, so a checkpoint this code would compute wrongly never
    loads quietly.
    """

    def __init__(self, path: Path, data: dict[str, Any] | None = None):
        self.path = path
        if data is None:
            try:
                data = json.loads(path.read_text())
            except FileNotFoundError:
                raise CheckpointError(f"{path}: missing") from None
            except json.JSONDecodeError as error:
                raise CheckpointError(f"{path}: not JSON ({error})") from None
        self.data = data
        self.taken: set[str] = set()

    def take(self, key: str, default: Any = _MISSING, check: Callable[[Any], bool] | None = None, expect: str = "") -> Any:
        """The option's value (or `default` when absent); `check` failing refuses it, saying what was expected."""
        self.taken.add(key)
        if key not in self.data:
            if default is _MISSING:
                raise CheckpointError(f"{self.path}: option {key!r} is required")
            return default
        value = self.data[key]
        if check is not None and not check(value):
            raise CheckpointError(f"{self.path}: option {key}={value!r} is not supported (stepframe implements {expect})")
        return value

    def only(self, key: str, *supported: Any) -> Any:
        """An option stepframe implements for the listed values only (the first is the library's default)."""
        return self.take(key, supported[0], lambda v: v in supported, " or ".join(repr(s) for s in supported))

    def finish(self, inert: tuple[str, ...] = ()) -> None:
        """Refuses the first option neither taken nor listed as `inert` (metadata, training-only settings)."""
        for key in self.data:
            if key not in self.taken and key not in inert and not key.startswith("_"):
                raise CheckpointError(f"{self.path}: option {key!r} is not implemented by stepframe")


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def is_int_list(v: Any) -> bool:
    return isinstance(v, list) and len(v) > 0 and all(is_int(x) for x in v)
