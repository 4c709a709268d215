from django.conf import settings

from secushare.db import release_connections


class SecurityHeadersMiddleware:
    """Adds the Content-Security-Policy and the headers Django does not set itself.

    A view may set its own, stricter policy (downloads use a sandboxing one); it is
    left alone.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=()"
        )
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response


class ReleaseDatabaseMiddleware:
    """Hands a streaming response's database connections back before its body goes out.

    A level 1/2 download is decrypted while it streams, to a recipient who may read it for
    an hour; the view has done all its database work by then. Without this the thread would
    keep its connection until the last byte, so a hundred slow downloads held a hundred
    PostgreSQL connections, and the next request met "too many clients" (PostgreSQL allows
    100 by default). Outermost in MIDDLEWARE, so every other middleware has finished with it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.streaming:
            release_connections()
        return response
