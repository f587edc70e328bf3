"""`manage.py lookup`: which build a digest, digest fragment, image ID or reference belongs to, and
(`--package`) which builds contain a package."""

import json

from django.core.management.base import BaseCommand, CommandError

from history import packages, serializers
from history.digests import image_id
from history.keyset import Cursor, InvalidCursor
from history.search import InvalidQuery, LookupResult, Match, lookup
from history.wording import format_time, plural

LABEL_WIDTH = 12


class Command(BaseCommand):
    help = (
        "Find the builds something you pasted belongs to, with the tags each held and when. "
        "A reference finds the build its tag points to now, with or without registry host and "
        "Docker Hub's library/: python:3.14, demo/python:3.14, 127.0.0.1:5000/demo/python:3.14; "
        "add @sha256:... for that exact build. A digest finds its build whether it is the build's, "
        "a platform's, an image config's or a layer's (every build containing the layer). Part of a "
        "digest works: its first 4 or more hex digits, such as an IMAGE ID from docker images "
        "(e24bfc0eb157), or 8 or more from inside it. Anything else is looked for in repository, tag "
        "and version names. --package openssl (or openssl@3.0.13, or a purl) lists the builds whose "
        "SBOMs name that package instead. Exits 1 when nothing matches."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "query",
            nargs="?",
            help="python:3.14, name@sha256:..., sha256:..., e24bfc0eb157, or a name such as 3.14.",
        )
        parser.add_argument(
            "--package",
            help="Instead of a query: the builds whose SBOMs name this package, newest first: a name "
            "(openssl, any version, in any case), name@version (openssl@3.0.13) or a package URL.",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print the result as JSON (the API's search body)."
        )
        parser.add_argument("--limit", type=int, default=50, help="At most this many builds (default 50).")
        parser.add_argument(
            "--cursor", default="", help="`next` of a --json result: the builds older than it listed."
        )

    def handle(self, *args, **options):
        if options["limit"] < 1:
            raise CommandError("--limit must be at least 1")
        try:
            cursor = Cursor.decode(options["cursor"]) if options["cursor"] else None
        except InvalidCursor as error:
            raise CommandError(f"--cursor: {error}") from None
        if (options["query"] is None) == (options["package"] is None):
            raise CommandError("give either a query or --package, not both")
        if options["package"] is not None:
            self.find_package(options["package"], cursor, options)
            return
        try:
            result = lookup(options["query"], limit=options["limit"], cursor=cursor)
        except InvalidQuery as error:
            raise CommandError(f"invalid query: {error}") from None
        if options["json"]:
            # The API's search body, with the same serializer and the same times.
            self.stdout.write(json.dumps(serializers.lookup(result), indent=2, cls=serializers.ExactTimes))
        else:
            self.print_result(result)
        if not result.found:
            what = "nothing" if result.kind == "name" else "no build"
            raise CommandError(f"{what} matches {result.query[:200]!r}", returncode=1)

    def find_package(self, package: str, cursor: Cursor | None, options) -> None:
        try:
            found = packages.search(package, cursor=cursor, size=min(options["limit"], packages.MAX_PAGE))
        except packages.InvalidPackageQuery as error:
            raise CommandError(f"invalid package: {error}") from None
        if options["json"]:  # the API's body
            self.stdout.write(json.dumps(found.as_dict(), indent=2))
        elif found.items:
            self.print_package_builds(found)
        if not found.items:
            raise CommandError(f"no build contains {str(found.query)[:200]!r}", returncode=1)

    def print_package_builds(self, found: packages.SearchPage) -> None:
        """One line a build: repository, version, build digest, platforms, package version, current."""
        count = len(found.items)
        self.stdout.write(
            f"{plural(count, 'build')} {'contains' if count == 1 else 'contain'} {str(found.query)!r}:"
        )
        lines = [
            [
                row["repository"],
                row["version"] or "-",
                row["digest"],
                ",".join(row["platforms"]) or "-",
                row["package_version"] or "-",
                "current" if row["current"] else "",
            ]
            for row in (item.as_dict() for item in found.items)
        ]
        widths = [max(len(line[column]) for line in lines) for column in range(5)]
        for line in lines:
            columns = [value.ljust(width) for value, width in zip(line, widths, strict=False)] + line[5:]
            self.stdout.write("  ".join(columns).rstrip())
        if found.next_cursor:
            self.stdout.write(f"\nthe newest {count} only; older ones: --cursor {found.next_cursor.encode()}")

    def print_result(self, result: LookupResult) -> None:
        if result.note:
            self.stdout.write(result.note)
        if result.kind == "name":
            self.print_names(result)
            return
        if not result.matches:
            return
        count = len(result.matches)
        self.stdout.write(f"{count} {'build matches' if count == 1 else 'builds match'} {result.query!r}:")
        for match in result.matches:
            self.stdout.write("")
            self.print_match(match)
        if result.truncated:
            self.stdout.write(f"\nshowing the newest {count} only; give more of the digest to narrow it")

    def print_match(self, match: Match) -> None:
        build = match.build
        self.stdout.write(f"{build.repository.reference}@{build.digest}")
        self.field("matched", describe_match(match))
        self.field("version", str(build.version) if build.version else "unknown")
        self.field("first seen", format_time(build.first_seen_at))
        tags = [
            f"{held.tag} from {format_time(held.since)} until "
            + (format_time(held.until) if held.until else "now")
            for held in match.held
        ]
        self.fields("tags", tags or ["none recorded"])
        self.fields("platforms", [describe_platform(build, platform) for platform in build.platforms.all()])

    def print_names(self, result: LookupResult) -> None:
        names = result.names
        if names.repositories:
            self.stdout.write("repositories:")
            for repository in names.repositories:
                self.stdout.write(f"  {repository.reference}")
        if names.tags:
            self.stdout.write("tags:")
            for hit in names.tags:
                where = hit.build.digest if hit.build else "never seen pointing anywhere"
                if hit.build and not hit.present:
                    where = f"deleted (last {where})"
                self.stdout.write(f"  {hit.tag.repository.reference}:{hit.tag.name} -> {where}")
        if names.versions:
            self.stdout.write("versions:")
            for version in names.versions:
                builds = getattr(version, "build_count", 0)
                self.stdout.write(f"  {version.repository.reference} {version} ({plural(builds, 'build')})")

    def field(self, label: str, value: str) -> None:
        self.stdout.write(f"  {(label + ':') if label else '':<{LABEL_WIDTH}}{value}")

    def fields(self, label: str, values: list[str]) -> None:
        """One value per line, the label on the first."""
        for index, value in enumerate(values):
            self.field(label if index == 0 else "", value)


def describe_match(match: Match) -> str:
    if match.matched == "index":
        kind = "index digest" if match.build.is_index else "manifest digest"
        return f"{kind} {match.digest}"
    if match.matched == "platform":
        return f"platform digest {match.digest} ({match.platform})"
    if match.matched == "layer":
        return (
            f"contains the layer {match.digest} ({', '.join(str(platform) for platform in match.layer_of)})"
        )
    if match.matched == "attestation":
        return f"attestation manifest {match.digest} (SBOM, provenance: no platform image)"
    return f"image ID {match.image_id} of {match.platform} (config {match.digest})"


def describe_platform(build, platform) -> str:
    parts = [str(platform)]
    if platform.digest != build.digest:
        parts.append(platform.digest)
    if platform.config_digest:
        parts.append(f"image ID {image_id(platform.config_digest)}")
    return " ".join(parts)
