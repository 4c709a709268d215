from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts")


class AdminConfig(admin_apps.AdminConfig):
    """Django's admin with the login of ``accounts`` (see ``accounts.admin_site``)."""

    default = False
    default_site = "accounts.admin_site.AdminSite"
