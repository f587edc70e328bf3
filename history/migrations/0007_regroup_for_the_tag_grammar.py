"""Re-read every stored tag with today's grammar, and re-derive each build's version from it.

Databases polled before the grammar knew date stamps anywhere, two-part releases, Java updates
and prereleases in any case hold the old readings: variants like `dev-202611231200` (one row per
build), builds of `18.3` in no version, JDK lines named `26.0`. A poll never revisits a build it
has stored, so without this step those rows would stay wrong for good.

For each repository, in its own transaction:
1. each Tag gets the kind, version, variant and subject its name has now;
2. each build's version is the most specific version among every tag that ever pointed at it
   (its events and its current state: the evidence a poll had, and more); a build no tag
   names keeps the version it has (a version label, say);
3. every version goes into the line its name and the repository's line depth give;
4. versions left without builds and lines left without versions are deleted.

Safe on a large PostgreSQL table: not atomic as a whole, so each repository is its own
transaction; it takes row locks on that repository's rows only (a poll of that repository waits
for it), and every read is by repository through the existing indexes. Running it again changes
nothing. The reverse is a no-op: the old readings were the bug.
"""

from django.db import migrations, transaction

from catalog.tags import classify, default_line_depth, line_of, version_of

BATCH = 1000


def regroup(apps, schema_editor):
    Repository = apps.get_model("catalog", "Repository")
    for repository in Repository.objects.only("pk", "line_depth").iterator():
        with transaction.atomic():
            _regroup(apps, repository)


def _regroup(apps, repository):
    Tag, Line, Version = (apps.get_model("catalog", name) for name in ("Tag", "Line", "Version"))
    Build, TagEvent, TagState = (apps.get_model("history", name) for name in ("Build", "TagEvent", "TagState"))

    tags = list(Tag.objects.filter(repository=repository).only("name", "kind", "version", "variant", "subject_digest"))
    changed = []
    for tag in tags:
        info = classify(tag.name)
        now = (info.kind.value, info.version[:128], info.variant[:128], info.subject_digest)
        if (tag.kind, tag.version, tag.variant, tag.subject_digest) != now:
            tag.kind, tag.version, tag.variant, tag.subject_digest = now
            changed.append(tag)
    Tag.objects.bulk_update(changed, ["kind", "version", "variant", "subject_digest"], batch_size=BATCH)

    names = {tag.pk: tag.name for tag in tags}
    held: dict[int, set[str]] = {}
    for source in (TagEvent, TagState):
        pairs = source.objects.filter(tag__repository=repository, build__isnull=False).values_list("build_id", "tag_id")
        for build_id, tag_id in pairs.distinct().iterator():
            held.setdefault(build_id, set()).add(names[tag_id])
    depth = repository.line_depth or default_line_depth(tag.version for tag in tags)

    lines = {(line.variant, line.name): line for line in Line.objects.filter(repository=repository)}

    def line(name, variant):
        key = (variant, line_of(name, depth) or name)
        if key not in lines:
            lines[key] = Line.objects.create(repository=repository, variant=key[0], name=key[1])
        return lines[key]

    versions = {(v.name, v.variant): v for v in Version.objects.filter(repository=repository).select_related("line")}
    builds = []
    for build in Build.objects.filter(repository=repository, pk__in=list(held)).only("pk", "version_id").iterator():
        named = version_of(classify(name) for name in held[build.pk])
        if named is None:
            continue
        key = (named.version[:128], named.variant[:128])
        if key not in versions:
            versions[key] = Version.objects.create(
                repository=repository, name=key[0], variant=key[1], line=line(*key)
            )
        if build.version_id != versions[key].pk:
            build.version_id = versions[key].pk
            builds.append(build)
    Build.objects.bulk_update(builds, ["version"], batch_size=BATCH)

    for version in versions.values():
        wanted = line(version.name, version.variant)
        if version.line_id != wanted.pk:
            version.line = wanted
            version.save(update_fields=["line"])
    Version.objects.filter(repository=repository, builds__isnull=True).delete()
    Line.objects.filter(repository=repository, versions__isnull=True).delete()


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("catalog", "0002_cache_table"),
        ("history", "0006_attestations_from_platforms"),
    ]

    operations = [migrations.RunPython(regroup, migrations.RunPython.noop, elidable=True)]
