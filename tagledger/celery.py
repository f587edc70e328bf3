"""The Celery app: workers and beat load it with `celery -A tagledger`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tagledger.settings")

app = Celery("tagledger")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
