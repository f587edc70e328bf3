"""A GIN index (jsonb_path_ops) on history_platform.layers: search finds the builds that contain a
layer by `layers @> '[{"digest": "sha256:…"}]'` (history.digests.LAYER), one index probe instead of
decoding every platform's layer list.

PostgreSQL only, built CONCURRENTLY (hence `atomic = False`) so polls keep writing platforms, and
dropped first if a failed concurrent build left it INVALID. SQLite has no such index: there a layer
search reads every platform's JSON (json_each), which is what an embedded instance's size affords.
"""

from django.db import migrations

CREATE = "CREATE INDEX CONCURRENTLY platform_layers_gin ON history_platform USING gin (layers jsonb_path_ops)"
DROP = "DROP INDEX CONCURRENTLY IF EXISTS platform_layers_gin"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)  # the INVALID leftover of a failed concurrent build, if any
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY refuses to run in a transaction

    dependencies = [("history", "0011_imported_events")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
