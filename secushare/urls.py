from django.contrib import admin
from django.urls import include, path

from secushare import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon),
    path("accounts/", include("accounts.urls")),
    path("tokens/", include("accounts.tokens")),
    path("keys/", include("secupass.urls")),
    path("api/v1/uploads/", include("deliveries.uploads")),
    path("api/v1/keys/", include("secupass.api")),
    path("api/v1/", include("deliveries.api")),
    path("", include("deliveries.sender_views")),
    path("", include("deliveries.receive")),
    path("admin/", admin.site.urls),
]
