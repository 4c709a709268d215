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
