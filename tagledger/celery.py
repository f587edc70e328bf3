"""The Celery app: workers and beat load it with `celery -A tagledger`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tagledger.settings")

app = Celery("tagledger")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.conf.beat_schedule = {
    "dispatch-due-polls": {
        "task": "history.tasks.dispatch",
        "schedule": 15.0,
        "options": {"expires": 14},  # a dispatch that waited past the next one is useless
    },
}
