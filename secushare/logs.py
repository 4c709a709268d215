"""Keep link tokens out of logs.

A recipient's personal link is ``/d/<token>``; whoever reads a log line with it
could open the delivery's landing page. Access logs (gunicorn) and Django's own
log records pass through :func:`redact`.
"""

import logging
import re

from gunicorn.glogging import Logger as GunicornLogger

_TOKEN_PATH = re.compile(r"/d/[A-Za-z0-9_\-]{8,}")
_BEARER = re.compile(r"(?i)(bearer\s+)\S+")


def redact(text: str) -> str:
    return _BEARER.sub(r"\1[redacted]", _TOKEN_PATH.sub("/d/[redacted]", text))


class RedactTokensFilter(logging.Filter):
    def filter(self, record):
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


class AccessLogger(GunicornLogger):
    """gunicorn's logger with the request line, path and referrer redacted."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "f"):
            if isinstance(atoms.get(key), str):
                atoms[key] = redact(atoms[key])
        return atoms
