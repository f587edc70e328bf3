"""`event_tag_timeline` gains `id` (tag, detected_at, id), so a tag's history pages by keyset
from one event to the next, as (detected_at, id) orders them.

On PostgreSQL the new index is built CONCURRENTLY under another name, the old one dropped
CONCURRENTLY, and the new one renamed: polls keep writing events throughout (the largest table),
and the timeline always has an index to read. That cannot run inside a transaction, hence
`atomic = False`. SQLite has no CONCURRENTLY (it locks the file for any write anyway): there the
index is simply replaced. The model state is the plain RemoveIndex and AddIndex on every backend.
"""

from django.db import migrations, models

NAME = "event_tag_timeline"
OLD = models.Index(fields=["tag", "-detected_at"], name=NAME)
NEW = models.Index(fields=["tag", "detected_at", "id"], name=NAME)


def forwards(apps, schema_editor):
    _replace(apps, schema_editor, OLD, NEW)


def backwards(apps, schema_editor):
    _replace(apps, schema_editor, NEW, OLD)


def _replace(apps, schema_editor, old: models.Index, new: models.Index) -> None:
    event = apps.get_model("history", "TagEvent")
    if schema_editor.connection.vendor != "postgresql":
        schema_editor.remove_index(event, old)
        schema_editor.add_index(event, new)
        return
    building = models.Index(fields=new.fields, name=f"{NAME}_new")
    # A concurrent build that failed leaves an INVALID index under its name: start over.
    schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(building.name)}")
    schema_editor.add_index(event, building, concurrently=True)
    schema_editor.remove_index(event, old, concurrently=True)
    schema_editor.rename_index(event, building, new)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY refuses to run in a transaction

    dependencies = [
        ("catalog", "0001_initial"),
        ("history", "0003_digest_search_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(model_name="tagevent", name=NAME),
                migrations.AddIndex(model_name="tagevent", index=NEW),
            ],
            database_operations=[migrations.RunPython(forwards, backwards, elidable=False)],
        )
    ]
