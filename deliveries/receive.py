"""The recipient's side, mounted at "/": links, pages, downloads and the CLI endpoint."""

from django.urls import path

from deliveries import downloads, receive_api, receive_e2e, receive_guest, receive_views

app_name = "receive"

urlpatterns = [
    path("d/<str:token>", receive_views.landing, name="landing"),
    path("r/<uuid:rid>/", receive_views.delivery, name="delivery"),
    path("r/<uuid:rid>/address", receive_views.address, name="address"),
    path("r/<uuid:rid>/switch-account", receive_views.switch_account, name="switch_account"),
    path("r/<uuid:rid>/register", receive_guest.register, name="register"),
    path("r/<uuid:rid>/verify", receive_guest.verify, name="verify"),
    path("r/<uuid:rid>/verify/<str:secret>", receive_guest.verify_link, name="verify_link"),
    path("r/<uuid:rid>/files/<uuid:file_id>", downloads.file_download, name="file"),
    path("r/<uuid:rid>/zip", downloads.zip_download, name="zip"),
    # Levels 3 and 4: the browser decrypts (receive_e2e).
    path("r/sw.js", receive_e2e.service_worker, name="service_worker"),
    path("r/<uuid:rid>/e2e", receive_e2e.e2e, name="e2e"),
    path("r/<uuid:rid>/blobs/<uuid:file_id>", receive_e2e.blob, name="blob"),
    path("r/<uuid:rid>/downloaded", receive_e2e.downloaded, name="downloaded"),
    path("received/", receive_views.received, name="received"),
    path("api/v1/receive", receive_api.receive, name="api_receive"),
]
