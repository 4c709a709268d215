"""The administration, reached through the one throttled login page.

Django's admin brings a login form of its own that would let anyone guess passwords
past the limits of ``accounts.throttle``; here it sends people to ``accounts:login``.
"""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _


class AdminSite(admin.AdminSite):
    site_title = format_lazy(_("{site_name} administration"), site_name=settings.SITE_NAME)
    site_header = site_title
    index_title = _("Administration")

    def login(self, request, extra_context=None):
        index = reverse("admin:index", current_app=self.name)
        if request.user.is_authenticated:
            if self.has_permission(request):
                return redirect(index)
            raise PermissionDenied
        target = request.GET.get(REDIRECT_FIELD_NAME) or index
        return redirect_to_login(target, reverse("accounts:login"))
