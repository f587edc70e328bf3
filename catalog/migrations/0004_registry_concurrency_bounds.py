# Bounds and help text only: no SQL, so nothing to lock on a large table.

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0003_tag_repository_kind"),
    ]

    operations = [
        migrations.AlterField(
            model_name="registry",
            name="concurrency",
            field=models.PositiveSmallIntegerField(
                default=8,
                help_text="Requests in flight at once, across all workers; a poll may use them all. Raise it for registries that allow more (Docker Hub, GHCR, Quay).",
                validators=[
                    django.core.validators.MinValueValidator(1),
                    django.core.validators.MaxValueValidator(64),
                ],
            ),
        ),
    ]
