"""Keep link tokens out of logs.

A recipient's personal link is ``/d/<token>``; whoever reads a log line with it
could open the delivery's landing page. The guest verification link
(``/r/<id>/verify/<secret>``) and the password reset link
(``/accounts/password/reset/<uid>/<token>/``) carry secrets too. Access logs
(gunicorn) and Django's own log records pass through :func:`redact`; nginx's
log format in deploy/nginx.conf does the same.
"""

import logging
import re

from gunicorn.glogging import Logger as GunicornLogger

_SECRETS_IN_PATHS = (
    (re.compile(r"/d/[A-Za-z0-9_\-]{8,}"), "/d/[redacted]"),
    (re.compile(r"(/r/[0-9a-f-]{36}/verify/)[^/?\s\"]+"), r"\1[redacted]"),
    (re.compile(r"(/accounts/password/reset/[^/?\s\"]+/)[^/?\s\"]+"), r"\1[redacted]"),
)
_BEARER = re.compile(r"(?i)(bearer\s+)\S+")


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS_IN_PATHS:
        text = pattern.sub(replacement, text)
    return _BEARER.sub(r"\1[redacted]", text)


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
