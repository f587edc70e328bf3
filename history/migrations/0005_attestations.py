"""Attestation: BuildKit attestation manifests, stored as what they are rather than as platforms.

The digest index is per database, like the other digest indexes (0003): PostgreSQL answers both
`digest = %s` and `digest LIKE 'sha256:ab12%'` from a btree with the pattern opclass; SQLite's
LIKE is case-insensitive, so only a NOCASE index answers a prefix (build_id makes it covering).
The table is new and empty, so creating them takes no time and blocks nothing.
"""

import django.db.models.deletion
from django.db import migrations, models

# (create, drop) per vendor.
STATEMENTS = {
    "postgresql": [
        (
            "CREATE INDEX attestation_digest_like ON history_attestation (digest varchar_pattern_ops)",
            "DROP INDEX attestation_digest_like",
        ),
    ],
    "sqlite": [
        (
            "CREATE INDEX attestation_digest_like ON history_attestation (digest COLLATE NOCASE, build_id)",
            "DROP INDEX attestation_digest_like",
        ),
    ],
}


def create(apps, schema_editor):
    for sql, _ in STATEMENTS.get(schema_editor.connection.vendor, []):
        schema_editor.execute(sql)


def drop(apps, schema_editor):
    for _, sql in reversed(STATEMENTS.get(schema_editor.connection.vendor, [])):
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [
        ("history", "0004_event_after_event"),
    ]

    operations = [
        migrations.CreateModel(
            name="Attestation",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("digest", models.CharField(max_length=135)),
                ("media_type", models.CharField(max_length=128)),
                (
                    "size",
                    models.BigIntegerField(
                        blank=True,
                        help_text="Size of the attestation manifest itself; unknown for rows converted from platforms.",
                        null=True,
                    ),
                ),
                (
                    "subject",
                    models.CharField(
                        blank=True,
                        help_text="Digest of the platform image it describes (vnd.docker.reference.digest); empty: unknown.",
                        max_length=135,
                    ),
                ),
                (
                    "predicate_types",
                    models.JSONField(blank=True, default=list, help_text="Of its statements, in layer order (in-toto.io/predicate-type)."),
                ),
                (
                    "layers",
                    models.JSONField(
                        blank=True,
                        default=list,
                        help_text="The statements: digest, size, media_type, predicate_type.",
                    ),
                ),
                (
                    "build",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="attestations",
                        to="history.build",
                    ),
                ),
                (
                    "platform",
                    models.ForeignKey(
                        blank=True,
                        help_text="The subject, when the build has it as a platform.",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="attestations",
                        to="history.platform",
                    ),
                ),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("build", "digest"), name="unique_attestation")],
            },
        ),
        migrations.RunPython(create, drop, elidable=False),
    ]
