from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SecuPassConfig(AppConfig):
    name = "secupass"
    verbose_name = _("SecuPass keys")
