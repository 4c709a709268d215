import logging

from secushare.logs import RedactTokensFilter, redact


def test_link_tokens_and_bearer_tokens_are_redacted():
    line = 'GET /d/Zk3_aB9-xYq1LmN0pQrStUvWxYz12345/ HTTP/1.1 "Authorization: Bearer ssk_abc"'
    cleaned = redact(line)
    assert "Zk3_aB9" not in cleaned
    assert "ssk_abc" not in cleaned
    assert "/d/[redacted]/" in cleaned


def test_django_log_records_are_redacted(caplog):
    logger = logging.getLogger("django.request")
    logger.addFilter(RedactTokensFilter())
    try:
        with caplog.at_level(logging.WARNING, logger="django.request"):
            logger.warning("Gone: %s", "/d/Zk3_aB9-xYq1LmN0pQrStUvWxYz12345")
    finally:
        logger.filters.clear()
    assert caplog.records[0].getMessage() == "Gone: /d/[redacted]"


def test_verification_and_password_reset_secrets_are_redacted():
    rid = "3f2b6c1e-9a7d-4e21-b0c4-5d6e7f8a9b0c"
    verify = f"GET /r/{rid}/verify/Xy9-secretCODE123 HTTP/1.1"
    reset = "GET /accounts/password/reset/MQ/cz1abc-9f8e7d6c5b4a3/ HTTP/1.1"
    assert redact(verify) == f"GET /r/{rid}/verify/[redacted] HTTP/1.1"
    assert redact(reset) == "GET /accounts/password/reset/MQ/[redacted]/ HTTP/1.1"
    # Ordinary pages stay readable in the log.
    assert redact(f"GET /r/{rid}/files/abc HTTP/1.1") == f"GET /r/{rid}/files/abc HTTP/1.1"
    assert redact("GET /accounts/password/reset/ HTTP/1.1").endswith("/reset/ HTTP/1.1")
