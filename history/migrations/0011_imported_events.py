"""Mark a repository's import: `TagEvent.imported` on the first sightings its first poll writes,
`imported_tags` on the one row of each import the changelog shows, and `event_collapsed`, the
partial index that reads the changelog with each import as that one row.

Safe on a big table:
- `imported` is NOT NULL with a constant default: on PostgreSQL 11 and later ADD COLUMN … DEFAULT
  false NOT NULL only writes the catalog (the default is stored once, not in every row), and the
  default stays in the database (`db_default`) so workers still running the previous code can
  insert events while this deploys. `imported_tags` is a nullable column without a CHECK (a
  PositiveIntegerField's would make PostgreSQL read every row to validate it): catalog only too.
- the index is built CONCURRENTLY on PostgreSQL, so polls keep writing events meanwhile; that
  cannot run inside a transaction, hence `atomic = False` (as in 0008).

No data migration: existing events stay `imported = false`. Which rows were an import is not
written down anywhere older rows could be read from with certainty (a poll may have been partial,
its PollRun deleted, or two first polls may have raced), and history is never invented after the
fact. Older imports keep their rows, as before this migration; they sink out of the home page's
latest changes as new changes arrive, and every import from now on is one row.
"""

from django.db import migrations, models

INDEX = models.Index(
    fields=["-detected_at", "-id"],
    name="event_collapsed",
    condition=models.Q(imported=False) | models.Q(imported_tags__isnull=False),
)


def create(apps, schema_editor):
    schema_editor.add_index(apps.get_model("history", "TagEvent"), INDEX, **_concurrently(schema_editor))


def drop(apps, schema_editor):
    schema_editor.remove_index(apps.get_model("history", "TagEvent"), INDEX, **_concurrently(schema_editor))


def _concurrently(schema_editor) -> dict:
    return {"concurrently": True} if schema_editor.connection.vendor == "postgresql" else {}


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY refuses to run in a transaction

    dependencies = [("history", "0010_sqlite_digest_trigrams")]

    operations = [
        migrations.AddField(
            model_name="tagevent",
            name="imported",
            field=models.BooleanField(
                db_default=False,
                default=False,
                help_text="A first sighting written by the repository's import (its first poll with tags).",
            ),
        ),
        migrations.AddField(
            model_name="tagevent",
            name="imported_tags",
            field=models.IntegerField(
                blank=True,
                null=True,
                help_text="On the event standing for an import in the changelog: how many tags it imported.",
            ),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="tagevent", index=INDEX)],
            database_operations=[migrations.RunPython(create, drop, elidable=False)],
        ),
    ]
