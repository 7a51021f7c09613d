"""Secret values never shown: every one known is replaced by ``***``.

Values the inventory takes from the environment or from files are
registered here as they are read. Logs pass through :class:`MaskingFilter`
and every machine-readable document through :func:`mask_data`, so a secret
appears at no verbosity and in no ``--json`` output, whatever message or
field carries it.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Iterable
from typing import Any

MASK = "***"
#: Shorter values are too likely to occur by chance to be replaced in text.
MIN_MASKED_LENGTH = 3

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(value: str) -> None:
    """Remember ``value`` (and each of its lines) as a secret to mask."""
    parts = {value, *value.splitlines()}
    with _lock:
        _secrets.update(p for p in parts if len(p.strip()) >= MIN_MASKED_LENGTH)


def known_secrets() -> tuple[str, ...]:
    """Every registered secret, longest first (so no part of one is left)."""
    with _lock:
        return tuple(sorted(_secrets, key=len, reverse=True))


def forget_secrets() -> None:
    """Drop every registered secret (tests)."""
    with _lock:
        _secrets.clear()


def mask(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` with every secret replaced by ``***``."""
    for secret in known_secrets() if secrets is None else secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def mask_data(data: Any) -> Any:
    """A copy of a JSON-like document with every secret masked, keys too."""
    secrets = known_secrets()
    if not secrets:
        return data
    return _mask_value(data, secrets)


def _mask_value(data: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(data, str):
        return mask(data, secrets)
    if isinstance(data, dict):
        return {
            _mask_value(k, secrets): _mask_value(v, secrets) for k, v in data.items()
        }
    if isinstance(data, (list, tuple)):
        return [_mask_value(v, secrets) for v in data]
    return data


class MaskingFilter(logging.Filter):
    """Masks secrets in a record's message and traceback; put it on handlers.

    The message is formatted here, once, so that a secret passed as a ``%s``
    argument is caught as surely as one written into the text.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not known_secrets():
            return True
        message = record.getMessage()
        if record.exc_info and record.exc_info[0] is not None:
            lines = traceback.format_exception(*record.exc_info)
            message = f"{message}\n{''.join(lines).rstrip()}"
            record.exc_info = None
            record.exc_text = None
        record.msg = mask(message)
        record.args = None
        return True
