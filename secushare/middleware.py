from django.conf import settings


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
