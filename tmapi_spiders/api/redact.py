"""The one place that takes the API token out of outside text (logs, stats, records, Redis): matched
however a server escaped each character (percent-encoded, JSON `\\/` or `\\uXXXX`, in any mix)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

MASK = "[redacted]"
# Shorter secrets would match ordinary words: a token is never that short.
MIN_SECRET_LENGTH = 4
# JSON escapes of a backslash or of an ASCII character: the only ones whose decoded text can spell the
# token in a way the JSON text did not (`\u00252F` reads as `%2F`, `\\/` as `\/`).
_NESTED_ESCAPE = re.compile(rb"\\\\|\\u00[0-7]", re.IGNORECASE)


def _escapes(char: str) -> list[str]:
    """Every escaped way a server may write `char` (hex case is left to IGNORECASE)."""
    forms = ["".join(f"%{byte:02X}" for byte in char.encode("utf-8"))]
    units = char.encode("utf-16-be")
    forms.append("".join(f"\\u{units[i]:02X}{units[i + 1]:02X}" for i in range(0, len(units), 2)))
    short = {"/": "\\/", '"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    if char in short:
        forms.append(short[char])
    if char == " ":
        forms.append("+")
    return forms


def _char_pattern(char: str) -> str:
    return "(?:" + "|".join(re.escape(form) for form in [char, *_escapes(char)]) + ")"


class Redactor:
    """Replaces every known secret in text, bytes and JSON-like values by `MASK`."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        self.secrets = tuple(sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}))
        # A group per character, serving str and bytes alike; longest secret first (no tail left).
        per_secret = ["".join(map(_char_pattern, s)) for s in sorted(self.secrets, key=len, reverse=True)]
        source = "|".join(per_secret)
        self._pattern = re.compile(source, re.IGNORECASE) if per_secret else None
        self._bytes_pattern = re.compile(source.encode("utf-8"), re.IGNORECASE) if per_secret else None
        # found_in_bytes: the secrets as written, then the characters' escapes grouped by their first byte.
        self._lower_forms = tuple(sorted({secret.encode("utf-8").lower() for secret in self.secrets}))
        hints: dict[bytes, set[bytes]] = {}
        for char in {char for secret in self.secrets for char in secret}:
            for escape in _escapes(char):
                if escape != "\\/":
                    hint = escape.encode("utf-8").lower()
                    hints.setdefault(hint[:1], set()).add(hint)
        self._hint_groups = tuple(
            (first, re.compile(re.escape(first) + b"(?:" + b"|".join(re.escape(h[1:]) for h in sorted(group)) + b")"))
            for first, group in sorted(hints.items())
        )

    def __bool__(self) -> bool:
        return self._pattern is not None

    def found_in(self, text: str) -> bool:
        return self._pattern is not None and self._pattern.search(text) is not None

    def found_in_bytes(self, data: bytes) -> bool:
        """Whether `bytes()` would change `data`, cheaply: every answer body goes through this."""
        if self._bytes_pattern is None:
            return False
        lowered = data.lower()
        if any(form in lowered for form in self._lower_forms):
            return True
        for first, group in self._hint_groups:
            if first in lowered and group.search(lowered):
                return self._bytes_pattern.search(data) is not None
        if b"\\/" in lowered:
            unslashed = lowered.replace(b"\\/", b"/")
            return any(form in unslashed for form in self._lower_forms)
        return False

    def hidden_in_json(self, body: bytes) -> bool:
        """Whether the strings JSON text `body` decodes to may spell the token where `bytes()` saw none: only
        escapes of a backslash or of an ASCII character can (a body without a backslash, memchr's answer, has none)."""
        return self._pattern is not None and b"\\" in body and _NESTED_ESCAPE.search(body) is not None

    def text(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def bytes(self, data: bytes) -> bytes:
        if self._bytes_pattern is None or not data:
            return data
        return self._bytes_pattern.sub(MASK.encode(), data)

    def value(self, value: Any) -> Any:
        """A copy of a JSON-like value (str, list, dict, tuple) with every string redacted."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bytes):
            return self.bytes(value)
        if isinstance(value, dict):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.value(v) for v in value)
        return value

    def filter(self, record: logging.LogRecord) -> bool:
        """As a log handler's filter (logging takes any object with this method): redacts the record's
        whole text and traceback."""
        try:
            message = record.getMessage()
        except Exception:  # a broken %-format: let the handler report it as it would
            return True
        record.msg, record.args = self.text(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.text(record.exc_text)
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self.text(record.stack_info)
        return True
