"""The Celery app. tenant-schemas-celery makes every task tenant-aware: the schema of the caller
travels in the task headers and the worker runs the task inside it."""

import os

from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = CeleryApp("billing")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
