"""The Celery app. tenant-schemas-celery makes every task tenant-aware: the schema of the caller
travels in the task headers and the worker runs the task inside it."""

import os

from celery import signals
from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = CeleryApp("billing")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _database_connections_as_for_requests(**kwargs) -> None:
    """Keep or close database connections between tasks as Django does between requests: kept
    for CONN_MAX_AGE (production: 60 s; development: 0, closed after each), dropped if broken.
    Celery's fixup alone would open a new PostgreSQL backend for every task (a fork,
    authentication, the session set-up), which was a tenth of a webhook worker's time."""
    from django.db import close_old_connections

    close_old_connections()
