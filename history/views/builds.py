"""A version's digest history and one build's details."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode

from catalog.models import Version
from tagledger.access import readable

from .. import packages, params, supply, supply_chain
from ..digests import image_id
from ..keyset import Cursor, InvalidCursor
from ..models import Build, TagEvent
from ..versions import NEWEST_FIRST, digest_history, neighbours


@readable
def version(request, pk: int):
    version = get_object_or_404(Version.objects.select_related("repository__registry", "line"), pk=pk)
    token = request.GET.get("cursor", "")
    try:
        cursor = Cursor.decode(token) if token else None
    except InvalidCursor as invalid:
        context = {"version": version, "error": str(invalid)}
        return render(request, "history/version.html", context, status=400)
    history = digest_history(version, cursor)
    return render(
        request,
        "history/version.html",
        {"version": version, "history": history, "rows": history.rows, "timeline": history.timeline,
         "cursor": token},
    )  # fmt: skip


@readable
def version_compare(request, pk: int):
    """The version page's two ticked builds, as the compare page's `a` (older) and `b` (newer)."""
    version = get_object_or_404(Version, pk=pk)
    try:
        ids = params.ids(request.GET.getlist("build"), limit=2)
    except params.InvalidParameter:
        ids = []  # not two ids: the same answer as two builds of another version
    picked = Build.objects.filter(version=version, pk__in=ids).order_by(*NEWEST_FIRST)
    if len(picked) != 2:
        messages.error(request, "Pick exactly two builds of this version to compare.")
        return redirect("history:version", pk=version.pk)
    newer, older = picked
    return redirect(f"{reverse('history:compare')}?{urlencode({'a': older.digest, 'b': newer.digest})}")


@readable
def build(request, pk: int):
    build = get_object_or_404(Build.objects.select_related("repository__registry", "version"), pk=pk)
    chain = supply_chain.for_build(build)  # loads the platforms in their order, and the attestations
    platforms = list(build.platforms.all())
    subjects = supply.subjects_of(build)
    if subjects:
        # cosign's signature manifests carry an image config naming no platform: not an image to run.
        platforms = [platform for platform in platforms if platform.os or platform.architecture]
    attestations = chain.attestation_rows
    held = TagEvent.objects.held([build])[build.pk]
    newer, older = neighbours(build)
    shown = {platform.pk for platform in platforms}
    context = {
        "supply": chain,
        # The build as a whole first, when anything describes it; then each platform shown below.
        "supplies": [chain.whole] * (chain.whole is not None)
        + [found for found in chain.by_platform if found.platform.pk in shown],
        "build": build,
        "platforms": [
            (
                platform,
                image_id(platform.config_digest),
                [a for a in attestations if a.platform_id == platform.pk],
            )
            for platform in platforms
        ],
        # Converted from rows older polls stored as platforms, or describing an image not recorded.
        "unattached": [attestation for attestation in attestations if attestation.platform_id is None],
        "held": held,
        "references": [
            f"{build.repository.reference}:{tag}@{build.digest}" for tag in sorted({h.tag for h in held})
        ],
        "artifacts": supply.artifact_tags(build),
        "artifact_of": subjects,
        "newer": newer,
        "older": older,
    }
    return render(request, "history/build.html", context)


@readable
def build_packages(request, pk: int):
    """The packages a build's SBOMs name, by name, a page at a time: what the build page's package
    count links to, and `GET /api/v1/builds/{digest}/packages` as a page (the same reader)."""
    build = get_object_or_404(Build.objects.select_related("repository__registry", "version"), pk=pk)
    platform = request.GET.get("platform", "")
    context = {"build": build, "platform": platform, "platforms": sorted(map(str, build.platforms.all()))}
    try:
        cursor = packages.PackageCursor.decode(request.GET["cursor"]) if request.GET.get("cursor") else None
        context["page"] = packages.in_build(build.digest, platform, cursor)
    except (packages.InvalidPackageQuery, InvalidCursor) as invalid:
        context["error"] = str(invalid)
        return render(request, "history/build_packages.html", context, status=400)
    return render(request, "history/build_packages.html", context)
