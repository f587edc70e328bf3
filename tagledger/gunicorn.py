"""gunicorn's settings for the web service (`gunicorn -c python:tagledger.gunicorn`): freeze the
loaded app out of the garbage collector's way in each worker.

A full (generation 2) collection scans every object alive, and a loaded Django app is hundreds of
thousands of them; under the repository page one came every ~11 requests and made its p95 twice
its p50 (BENCHMARKS.md, Pages: repository). `gc.freeze()` moves what exists at that moment to a
permanent generation that collections skip; what requests allocate is still collected.
"""

import gc

import django
from django.urls import get_resolver


def freeze_loaded_app() -> None:
    """Import what the first request would (the URLconf, hence every view, form and model module),
    then freeze it. Also what `bench.pages` calls before measuring, so it measures this."""
    django.setup()  # a no-op once the WSGI app is loaded
    get_resolver().url_patterns  # noqa: B018 - imports the URLconf and the views it names
    gc.collect()  # freeze only what is alive: garbage frozen would never be freed
    gc.freeze()


def post_worker_init(worker) -> None:
    """gunicorn's hook: each worker has loaded `tagledger.wsgi` and is about to take requests."""
    freeze_loaded_app()
