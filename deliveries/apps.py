from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DeliveriesConfig(AppConfig):
    name = "deliveries"
    verbose_name = _("Deliveries")

    def ready(self):
        from deliveries import key_events, key_mail

        key_events.connect()
        key_mail.connect()
