"""The `untracked` event kind (no SQL: choices and help texts live in Python only), and the
partial index of running polls that `PollRun.objects.sweep_stale()` reads.

On PostgreSQL the index is built CONCURRENTLY, so polls keep writing PollRuns while it builds on a
large database; that cannot run inside a transaction, hence `atomic = False`.
"""

import django.db.models.deletion
from django.db import migrations, models

INDEX = models.Index(condition=models.Q(("status", "running")), fields=["started_at"], name="poll_running")


def create(apps, schema_editor):
    model = apps.get_model("history", "PollRun")
    schema_editor.add_index(model, INDEX, **_concurrently(schema_editor))


def drop(apps, schema_editor):
    model = apps.get_model("history", "PollRun")
    schema_editor.remove_index(model, INDEX, **_concurrently(schema_editor))


def _concurrently(schema_editor) -> dict:
    return {"concurrently": True} if schema_editor.connection.vendor == "postgresql" else {}


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY refuses to run in a transaction

    dependencies = [
        ("catalog", "0003_tag_repository_kind"),
        ("history", "0007_regroup_for_the_tag_grammar"),
    ]

    operations = [
        migrations.AlterField(
            model_name="tagevent",
            name="build",
            field=models.ForeignKey(
                blank=True,
                help_text="Where the tag points from now on; empty when deleted or untracked.",
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="events",
                to="history.build",
            ),
        ),
        migrations.AlterField(
            model_name="tagevent",
            name="detected_at",
            field=models.DateTimeField(help_text="When the poll's request saw the change."),
        ),
        migrations.AlterField(
            model_name="tagevent",
            name="kind",
            field=models.CharField(
                choices=[
                    ("created", "Created"),
                    ("moved", "Moved"),
                    ("deleted", "Deleted"),
                    ("restored", "Restored"),
                    ("immutable_moved", "Immutable Moved"),
                    ("untracked", "Untracked"),
                ],
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="tagstate",
            name="confirmed_at",
            field=models.DateTimeField(
                help_text="When the last request that saw this state went out: it held then or later."
            ),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AddIndex(model_name="pollrun", index=INDEX)],
            database_operations=[migrations.RunPython(create, drop, elidable=False)],
        ),
    ]
