"""Container health check: `python -m secushare.healthcheck` exits 0 when the app answers.

It asks gunicorn on 127.0.0.1:8000 directly, presenting itself as the proxy would (the
site's host name, https), so ALLOWED_HOSTS and the https redirect let it through.
Imports no Django: it must stay cheap enough to run every 30 seconds.
"""

import http.client
import os
import sys
from urllib.parse import urlsplit


def main() -> int:
    site = urlsplit(os.environ.get("SITE_URL", "http://127.0.0.1:8000"))
    port = int(os.environ.get("PORT", "8000"))
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=4)
    try:
        connection.request(
            "GET",
            "/healthz",
            headers={"Host": site.netloc, "X-Forwarded-Proto": site.scheme or "http"},
        )
        status = connection.getresponse().status
    except OSError as e:
        print(f"unhealthy: {e}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    if status != 200:
        print(f"unhealthy: /healthz answered {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
