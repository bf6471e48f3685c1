"""One setting of ours: name, type, default, bounds, a one-line doc, and its allowed values in words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    name: str
    kind: str  # bool | int | float | str | choice | url
    default: Any
    group: str
    doc: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    env: bool = False  # the default is read from the environment variable of the same name
    unit: str = ""  # what a number counts ("seconds", "calls")
    zero: str = ""  # what 0 means, where it means something ("off", "no limit")

    def expected(self) -> str:
        """The allowed values in words, as messages and docs/settings.md show them."""
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "url":
            return "an http(s) URL"
        words = {"int": "a whole number", "float": "a number", "str": "text"}[self.kind]
        if self.unit:
            words += f" of {self.unit}"
        if self.low is not None and self.high is not None:
            words += f", from {self.low:g} to {self.high:g}"
        elif self.low is not None:
            words += f", {self.low:g} or more"
        if self.zero:
            words += f" (0: {self.zero})"
        return words
