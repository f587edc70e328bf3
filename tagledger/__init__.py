"""tagledger: records every digest each container image tag has ever pointed to."""

from .celery import app as celery_app

__all__ = ["celery_app"]
