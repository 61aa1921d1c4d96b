"""What viewers may see of a delivery error.

Errors can quote the downstream (the first 200 bytes of a non-2xx answer) or a handler's
exception message: operators need that to debug, viewers get only the kind of failure
("HTTP 500", "connection error", "TypeError"), the text before the first colon.
"""

from __future__ import annotations

REDACTED = "(details visible to operators)"


def redact_error(error: str) -> str:
    head, sep, _ = (error or "").partition(":")
    return f"{head}: {REDACTED}" if sep else head
