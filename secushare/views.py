from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.views.decorators.cache import never_cache


@never_cache
@login_required
def home(request):
    return render(request, "home.html")


@never_cache
def healthz(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    if request.GET.get("format") == "json":
        return JsonResponse({"status": "ok"})
    return HttpResponse("ok", content_type="text/plain")


def favicon(request):
    return redirect(static("img/icon.svg"), permanent=True)
