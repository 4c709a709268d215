from django.urls import path

from secupass import views

app_name = "keys"

urlpatterns = [
    path("", views.profile, name="profile"),
    path("create/", views.create, name="create"),
    path("change/", views.change, name="change"),
    path("reset/", views.reset, name="reset"),
]
