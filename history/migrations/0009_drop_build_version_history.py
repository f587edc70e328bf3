"""Drop `build_version_history` (version, -first_seen_at): a version's digest history is read
through `build_version_newest` (migration 0003), so this index only cost every insert of a build.
The foreign key keeps its own index on `version_id`.

On PostgreSQL it is dropped CONCURRENTLY, so polls keep writing builds meanwhile; that cannot run
inside a transaction, hence `atomic = False`.
"""

from django.db import migrations, models

INDEX = models.Index(fields=["version", "-first_seen_at"], name="build_version_history")


def drop(apps, schema_editor):
    schema_editor.remove_index(apps.get_model("history", "Build"), INDEX, **_concurrently(schema_editor))


def create(apps, schema_editor):
    schema_editor.add_index(apps.get_model("history", "Build"), INDEX, **_concurrently(schema_editor))


def _concurrently(schema_editor) -> dict:
    return {"concurrently": True} if schema_editor.connection.vendor == "postgresql" else {}


class Migration(migrations.Migration):
    atomic = False  # DROP INDEX CONCURRENTLY refuses to run in a transaction

    dependencies = [("history", "0008_untracked_and_running_polls")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.RemoveIndex(model_name="build", name="build_version_history")],
            database_operations=[migrations.RunPython(drop, create, elidable=False)],
        )
    ]
