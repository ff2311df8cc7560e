"""Mask secrets in URLs and messages: Finnhub's token travels in the query string (``?token=``)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

_QUERY_SECRET_RE = re.compile(r"((?:token|apikey|api_key|key|secret)=)[^&\s\"'#]*", re.IGNORECASE)
MIN_LITERAL = 6  # shorter literals would mask ordinary words ("tok" in "token")
_USERINFO_RE = re.compile(r"(://[^/:@\s]+:)[^@/\s]*@")


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with ``token=...``-style query values, URL passwords and the given literals
    (of at least ``MIN_LITERAL`` characters) masked."""
    text = _QUERY_SECRET_RE.sub(r"\1***", text)
    text = _USERINFO_RE.sub(r"\1***@", text)
    for secret in secrets:
        if secret and len(secret) >= MIN_LITERAL:
            text = text.replace(secret, "***")
    return text


class RedactFilter(logging.Filter):
    """Masks secrets in the records of a library logger (websockets logs request lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


_FILTER = RedactFilter()


def install_log_redaction(names: Iterable[str] = ("websockets", "websockets.client")) -> None:
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
