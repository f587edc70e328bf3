"""The index of a repository's tags by kind (and name), for the repository page's floating and
not-understood tags (see `Tag.Meta.indexes`).

On PostgreSQL it is built CONCURRENTLY, so polls keep writing tags while it builds on a large
database; that cannot run inside a transaction, hence `atomic = False`. The model state is the
plain `AddIndex`, the same on every backend; only how the database gets it differs.
"""

from django.db import migrations, models

INDEX = models.Index(fields=["repository", "kind", "name"], name="tag_repository_kind")


def create(apps, schema_editor):
    tag = apps.get_model("catalog", "Tag")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.add_index(tag, INDEX, concurrently=True)
    else:
        schema_editor.add_index(tag, INDEX)


def drop(apps, schema_editor):
    tag = apps.get_model("catalog", "Tag")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.remove_index(tag, INDEX, concurrently=True)
    else:
        schema_editor.remove_index(tag, INDEX)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY refuses to run in a transaction

    dependencies = [("catalog", "0002_cache_table")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="tag", index=INDEX)],
            database_operations=[migrations.RunPython(create, drop, elidable=False)],
        )
    ]
