"""The index of builds by (first_seen_at, id): package search reads the newest builds' SBOMs
first (history.packages), which without it sorted every build (100 ms and more at 1 M builds).

On PostgreSQL it is built CONCURRENTLY, so polls keep writing builds while it builds on a large
database; that cannot run inside a transaction, hence `atomic = False`.
"""

from django.db import migrations, models

INDEX = models.Index(fields=["first_seen_at", "id"], name="build_newest")


def create(apps, schema_editor):
    model = apps.get_model("history", "Build")
    if schema_editor.connection.vendor == "postgresql":
        # The INVALID leftover of a failed concurrent build, if any, would make this one fail.
        schema_editor.execute("DROP INDEX CONCURRENTLY IF EXISTS build_newest")
    schema_editor.add_index(model, INDEX, **_concurrently(schema_editor))


def drop(apps, schema_editor):
    model = apps.get_model("history", "Build")
    schema_editor.remove_index(model, INDEX, **_concurrently(schema_editor))


def _concurrently(schema_editor) -> dict:
    return {"concurrently": True} if schema_editor.connection.vendor == "postgresql" else {}


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY refuses to run in a transaction

    dependencies = [("history", "0014_attachment_position")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="build", index=INDEX)],
            database_operations=[migrations.RunPython(create, drop, elidable=False)],
        ),
    ]
