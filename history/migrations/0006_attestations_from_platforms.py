"""Turn the attestation manifests earlier polls stored as `unknown/unknown` platforms into Attestations.

A row is converted only when it shows what BuildKit writes and no platform image is: os and
architecture `unknown` with no variant, an OCI image manifest, and at least one layer, every one
an in-toto statement. Its digest and layers are kept. What those polls never stored cannot be
recovered here and is left empty rather than guessed: the subject (the platform image it
describes; the index that said so was not kept), the statements' predicate types (layer
annotations) and the manifest's own size (a platform's size is its config plus layers).

Safe on a large PostgreSQL table: not atomic, so each batch is its own short transaction; a
batch locks only the rows it converts (ROW EXCLUSIVE on the tables, which blocks no poll) for
milliseconds. Rows are read in windows of primary keys, so each statement reads a bounded
range of the pk index whatever the table's size, and reads take no locks a writer waits for.
If it stops half-way, running it again converts what is left.
"""

from django.db import migrations, transaction

IN_TOTO = "application/vnd.in-toto+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
WINDOW = 5000  # primary keys per read
LEGACY = {"os": "unknown", "architecture": "unknown", "variant": "", "media_type": OCI_MANIFEST}


def is_legacy_attestation(row: dict) -> bool:
    layers = row["layers"]
    return (
        all(row[name] == value for name, value in LEGACY.items())
        and isinstance(layers, list)
        and bool(layers)
        and all(isinstance(layer, dict) and layer.get("media_type") == IN_TOTO for layer in layers)
    )


def attestation_from(Attestation, row: dict):
    layers = [
        {"digest": layer.get("digest", ""), "size": layer.get("size", 0), "media_type": IN_TOTO, "predicate_type": ""}
        for layer in row["layers"]
    ]
    return Attestation(build_id=row["build_id"], digest=row["digest"], media_type=row["media_type"], layers=layers)


def convert(apps, schema_editor):
    Platform = apps.get_model("history", "Platform")
    Attestation = apps.get_model("history", "Attestation")
    db = schema_editor.connection.alias
    platforms = Platform.objects.using(db)
    last = platforms.order_by("-pk").values_list("pk", flat=True).first() or 0
    for start in range(0, last, WINDOW):
        rows = list(
            platforms.filter(pk__gt=start, pk__lte=start + WINDOW, os="unknown", architecture="unknown").values(
                "pk", "build_id", "digest", "media_type", "os", "architecture", "variant", "layers"
            )
        )
        legacy = [row for row in rows if is_legacy_attestation(row)]
        if not legacy:
            continue
        with transaction.atomic(using=db):
            Attestation.objects.using(db).bulk_create(
                [attestation_from(Attestation, row) for row in legacy], ignore_conflicts=True
            )
            platforms.filter(pk__in=[row["pk"] for row in legacy]).delete()


def convert_back(apps, schema_editor):
    """Back to the rows the old code reads, so its lookups still find the digests (the config
    digest those rows had is gone: the image ID of an attestation never meant anything)."""
    Platform = apps.get_model("history", "Platform")
    Attestation = apps.get_model("history", "Attestation")
    db = schema_editor.connection.alias
    attestations = Attestation.objects.using(db)
    last = attestations.order_by("-pk").values_list("pk", flat=True).first() or 0
    for start in range(0, last, WINDOW):
        rows = list(attestations.filter(pk__gt=start, pk__lte=start + WINDOW))
        if not rows:
            continue
        with transaction.atomic(using=db):
            Platform.objects.using(db).bulk_create(
                [
                    Platform(
                        build_id=row.build_id, os="unknown", architecture="unknown", digest=row.digest,
                        media_type=row.media_type, size=sum(layer.get("size", 0) for layer in row.layers),
                        layers=[
                            {key: layer.get(key) for key in ("digest", "size", "media_type")}
                            for layer in row.layers
                        ],
                    )
                    for row in rows
                ],
                ignore_conflicts=True,
            )
            attestations.filter(pk__in=[row.pk for row in rows]).delete()


class Migration(migrations.Migration):
    atomic = False  # one short transaction per batch: see the module docstring

    dependencies = [
        ("history", "0005_attestations"),
    ]

    operations = [
        migrations.RunPython(convert, convert_back, elidable=False),
    ]
