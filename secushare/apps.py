from django.apps import AppConfig


class SecuShareConfig(AppConfig):
    name = "secushare"
    verbose_name = "SecuShare"
