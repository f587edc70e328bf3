"""The one reader of a build's supply chain: its signatures, attestations, SBOMs, provenance and
vulnerability reports as the poll stored them (history.models.Attachment, and BuildKit's
Attestation rows), for the build page, the build API, compare and the changelog's signing flags.

Everything is read from stored rows in a fixed number of queries, whatever the number of
attachments or builds: `for_builds` reads many builds at once (compare reads two), and
`signing_changes` one page of tag events. Nothing here asks a registry.

Every value in `Attachment.details` came from a registry and may have any JSON type despite the
poll's care: each field is read with the type it should have and falls back per field.
"""

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from django.db.models import Prefetch, prefetch_related_objects

from .models import Attachment, Attestation, Build, Package, Platform, ReferrersCheck
from .supply import predicate_name

Kind = Attachment.Kind
Source = Attachment.Source
Signing = Literal["unsigned", "signer_changed"]

SEVERITIES = ("critical", "high", "medium", "low", "unknown")
# The sources a signature can come from: BuildKit writes attestations, never signatures.
SIGNATURE_SOURCES = (Source.REFERRERS, Source.TAG_SCHEMA, Source.COSIGN_TAG)
MAX_TEXT = 1000  # as the poll clips every string of `details`
SOURCE_WORDS = {
    Source.BUILDKIT: "a BuildKit attestation manifest in the index",
    Source.REFERRERS: "the registry's referrers API",
    Source.TAG_SCHEMA: "the referrers tag schema (sha256-<hex>)",
    Source.COSIGN_TAG: "a cosign tag (sha256-<hex>.sig, .att or .sbom)",
}


def where(source: str) -> str:
    """Where the poll found an attachment, in words."""
    return SOURCE_WORDS.get(source, source)


# The set-theoretic part of compare reads at most this many package rows for both builds together;
# an SBOM the poll stored is bounded (history.sbom.MAX_PACKAGES), this bounds two of them.
MAX_COMPARED_PACKAGES = 50_000


# --- what one build says ------------------------------------------------------------------------


@dataclass(frozen=True)
class SignatureInfo:
    """One signature of the build or of one of its platform images."""

    digest: str  # the manifest that carries it (a cosign `.sig` manifest, a referrer)
    source: str  # Attachment.Source: referrers, tag-schema, cosign-tag
    identity: str  # the Fulcio certificate's SAN: an e-mail, a workflow URL; "" when none
    issuer: str  # the OIDC issuer the certificate names; "" when none
    verified: bool
    detail: str  # exactly what was verified and what was not, or why it could not be read
    subject: str  # the digest it signs: the build's or a platform image's
    platform: str  # os/arch of the platform image it signs; "" for the build itself
    rekor_bundle: bool = False
    key: str = ""
    build_id: int | None = None  # its manifest, recorded here as a build (a cosign `.sig` tag)

    @property
    def signer(self) -> tuple[str, str]:
        return (self.identity, self.issuer)

    @property
    def where(self) -> str:
        return where(self.source)

    def as_dict(self) -> dict:
        """The API's shape (the issue's contract)."""
        return {
            "digest": self.digest,
            "source": self.source,
            "identity": self.identity,
            "issuer": self.issuer,
            "verified": self.verified,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Statement:
    """An attestation: one in-toto statement's predicate type, in the manifest that carries it."""

    digest: str
    predicate_type: str
    source: str = Source.BUILDKIT

    @property
    def name(self) -> str:
        return predicate_name(self.predicate_type) if self.predicate_type else "statement of no recorded type"

    def as_dict(self) -> dict:
        return {"digest": self.digest, "predicate_type": self.predicate_type}


@dataclass(frozen=True)
class SbomInfo:
    format: str  # "SPDX 2.3", "CycloneDX 1.5"
    tool: str
    package_count: int | None
    source: str
    digest: str

    @property
    def where(self) -> str:
        return where(self.source)

    def as_dict(self) -> dict:
        return {
            "format": self.format,
            "tool": self.tool,
            "package_count": self.package_count,
            "source": self.source,
            "digest": self.digest,
        }


@dataclass(frozen=True)
class ProvenanceInfo:
    builder: str
    build_type: str
    source_repository: str
    source_commit: str
    started_at: str | None  # ISO 8601 as the statement says it
    finished_at: str | None
    slsa: str  # "v0.2", "v1", ""
    source: str
    digest: str

    @property
    def source_ref(self) -> str:
        """`repository@commit`, or whichever of the two is known."""
        if self.source_repository and self.source_commit:
            return f"{self.source_repository}@{self.source_commit}"
        return self.source_repository or self.source_commit

    @property
    def where(self) -> str:
        return where(self.source)

    def as_dict(self) -> dict:
        return {
            "builder": self.builder,
            "build_type": self.build_type,
            "source_repository": self.source_repository,
            "source_commit": self.source_commit,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "slsa": self.slsa,
            "source": self.source,
            "digest": self.digest,
        }


@dataclass(frozen=True)
class VulnerabilityInfo:
    scanner: str
    counts: dict[str, int]  # by SEVERITIES, every one present
    total: int
    source: str
    digest: str

    @property
    def by_severity(self) -> list[tuple[str, int]]:
        return [(severity, self.counts[severity]) for severity in SEVERITIES]

    @property
    def where(self) -> str:
        return where(self.source)

    def as_dict(self) -> dict:
        return {
            "scanner": self.scanner,
            "counts": dict(self.counts),
            "total": self.total,
            "source": self.source,
            "digest": self.digest,
        }


KIND_WORDS = {
    Kind.SIGNATURE: "signature",
    Kind.SBOM: "SBOM",
    Kind.PROVENANCE: "provenance",
    Kind.VULNERABILITIES: "vulnerability report",
    Kind.ATTESTATION: "attestation",
}


@dataclass(frozen=True)
class Unreadable:
    """An attachment found but not read: that one alone, with why."""

    kind: str
    source: str
    digest: str
    error: str

    @property
    def what(self) -> str:
        return KIND_WORDS.get(self.kind, self.kind)

    @property
    def where(self) -> str:
        return where(self.source)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "source": self.source, "digest": self.digest, "error": self.error}


@dataclass
class PlatformSupply:
    """What is known about one platform image (`platform` None: the build as a whole, an index's
    own digest, or an image the build does not record as a platform)."""

    platform: Platform | None
    attestations: list[Statement] = field(default_factory=list)
    sboms: list[SbomInfo] = field(default_factory=list)
    provenance: list[ProvenanceInfo] = field(default_factory=list)
    vulnerabilities: list[VulnerabilityInfo] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)
    # The union of its SBOMs' package sets (Package ids); None when no SBOM was read.
    package_ids: frozenset[int] | None = field(default=None, repr=False)
    # An SBOM whose packages were not stored as a set still says how many it named.
    counted: int | None = None

    @property
    def name(self) -> str:
        return str(self.platform) if self.platform else ""

    @property
    def packages_count(self) -> int | None:
        """How many distinct packages its SBOMs name together; None when it has no SBOM read."""
        if self.package_ids is not None:
            return len(self.package_ids)
        return self.counted

    @property
    def other_attestations(self) -> list[Statement]:
        """What the build page lists here: the BuildKit ones are listed with the platform image."""
        return [found for found in self.attestations if found.source != Source.BUILDKIT]

    @property
    def is_empty(self) -> bool:
        return not (
            self.attestations or self.sboms or self.provenance or self.vulnerabilities or self.unreadable
        )


@dataclass
class SupplyChain:
    """A build's supply chain as recorded: `platforms` by Platform id, None for the build as a whole."""

    build: Build
    signatures: list[SignatureInfo]
    platforms: dict[int | None, PlatformSupply]
    looked: list[str]  # where tagledger looked for signatures and attestations, in words
    attestation_rows: list[Attestation] = field(default_factory=list, repr=False)  # BuildKit's, by digest

    @property
    def signed(self) -> bool:
        return bool(self.signatures)

    @property
    def signers(self) -> set[tuple[str, str]]:
        return {signature.signer for signature in self.signatures if signature.identity}

    @property
    def whole(self) -> PlatformSupply | None:
        """What describes the build as a whole, when anything does."""
        found = self.platforms.get(None)
        return None if found is None or found.is_empty else found

    @property
    def by_platform(self) -> list[PlatformSupply]:
        """The platform images' supply, in the build's platform order."""
        return [supply for key, supply in self.platforms.items() if key is not None]

    @property
    def is_empty(self) -> bool:
        return not self.signatures and all(supply.is_empty for supply in self.platforms.values())


def for_build(build: Build) -> SupplyChain:
    """`build`'s supply chain: five queries (platforms, attachments with their package sets,
    BuildKit attestations, the last referrers check, the signatures' own builds), two more when
    its repository and registry are not loaded."""
    return for_builds([build])[build.pk]


def for_builds(builds: list[Build], *, attachments_only: bool = False) -> dict[int, SupplyChain]:
    """{build id: its supply chain} for several builds, in the same queries as one.

    `attachments_only` (compare): what the attachments say and no more, in one query beyond the
    platforms: no BuildKit Attestation rows (their statements are attachments too once read), no
    referrers check (`looked` then says nothing of when the API was last asked), and signatures
    not linked to their manifests' builds."""
    if not builds:
        return {}
    prefetch_related_objects(builds, "repository__registry", Prefetch("platforms", queryset=_PLATFORM_ORDER))
    ids = [build.pk for build in builds]
    attachments = list(
        Attachment.objects.filter(build__in=ids)
        .select_related("packages")
        .order_by("build_id", "kind", "source", "manifest_digest", "blob_digest", "pk")
    )
    if attachments_only:
        attestations, checks, signature_builds = {build.pk: [] for build in builds}, {}, {}
    else:
        attestations = Attestation.objects.of_builds(builds)
        checks = dict(ReferrersCheck.objects.filter(build__in=ids).values_list("build_id", "checked_at"))
        signature_builds = _recorded(builds, attachments)
    by_build: dict[int, list[Attachment]] = {pk: [] for pk in ids}
    for attachment in attachments:  # in order: each build's list keeps it
        by_build[attachment.build_id].append(attachment)
    found = {}
    for build in builds:
        read = (attestations[build.pk], checks.get(build.pk), signature_builds)
        found[build.pk] = _read(build, by_build[build.pk], *read)
    return found


_PLATFORM_ORDER = Platform.objects.order_by("os", "architecture", "variant", "pk")


def _recorded(builds: list[Build], attachments: list[Attachment]) -> dict[tuple[int, str], int]:
    """{(repository id, digest): build id} of the signature manifests recorded as builds where
    their subject is (cosign pushes `.sig` beside the image): one query."""
    wanted = {attachment.manifest_digest for attachment in attachments if attachment.kind == Kind.SIGNATURE}
    repositories = {build.repository_id for build in builds}
    if not wanted:
        return {}
    rows = Build.objects.filter(repository__in=repositories, digest__in=wanted).values_list(
        "repository_id", "digest", "pk"
    )
    return {(repository, digest): pk for repository, digest, pk in rows}


def _read(build: Build, attachments, attestations, checked_at, signature_builds) -> SupplyChain:
    platforms = list(build.platforms.all())
    by_digest = {platform.digest: platform for platform in platforms}
    # A single-platform build is its one image: what describes the build describes that platform.
    single = platforms[0] if len(platforms) == 1 and not build.is_index else None
    supplies: dict[int | None, PlatformSupply] = {None: PlatformSupply(None)}
    for platform in platforms:
        supplies[platform.pk] = PlatformSupply(platform)

    def supply_of(platform_id: int | None, subject: str) -> PlatformSupply:
        if platform_id is None:
            platform = by_digest.get(subject) or single
            platform_id = platform.pk if platform else None
        return supplies.get(platform_id) or supplies[None]

    for attestation in attestations:
        supply = supply_of(attestation.platform_id, attestation.subject)
        for value in attestation.predicate_types or [""]:
            supply.attestations.append(Statement(attestation.digest, _text(value)))

    signatures = []
    package_sets: dict[int | None, list[set[int]]] = defaultdict(list)
    for attachment in attachments:
        supply = supply_of(attachment.platform_id, attachment.subject)
        details = attachment.details if isinstance(attachment.details, dict) else {}
        if attachment.kind == Kind.SIGNATURE:
            if attachment.source not in SIGNATURE_SOURCES:
                continue
            signatures.append(_signature(build, attachment, details, supply, signature_builds))
            continue
        if attachment.predicate_type:
            supply.attestations.append(
                Statement(attachment.manifest_digest, attachment.predicate_type, attachment.source)
            )
        if attachment.error:
            supply.unreadable.append(_unreadable(attachment))
            continue
        if attachment.kind == Kind.SBOM:
            supply.sboms.append(_sbom(attachment, details))
            if attachment.packages is not None:
                package_sets[supply.platform.pk if supply.platform else None].append(
                    _ids(attachment.packages.packages)
                )
            elif supply.sboms[-1].package_count is not None:
                supply.counted = max(supply.counted or 0, supply.sboms[-1].package_count)
        elif attachment.kind == Kind.PROVENANCE:
            supply.provenance.append(_provenance(attachment, details))
        elif attachment.kind == Kind.VULNERABILITIES:
            supply.vulnerabilities.append(_vulnerabilities(attachment, details))

    for key, supply in supplies.items():
        # An SBOM of an index's own digest holds for each of its images, as the packages API lists them.
        sets = package_sets.get(key, []) + (package_sets.get(None, []) if key is not None else [])
        if sets:
            supply.package_ids = frozenset().union(*sets)
    for supply in supplies.values():
        # A BuildKit attestation is both an Attestation row and the Attachments read from it: once.
        unique: dict[tuple[str, str], Statement] = {}
        for found in supply.attestations:
            unique.setdefault((found.digest, found.predicate_type), found)
        supply.attestations = list(unique.values())
    signatures.sort(key=lambda found: (not found.verified, found.identity, found.source, found.digest))
    return SupplyChain(build, signatures, supplies, _looked(build, checked_at), attestations)


def _signature(build, attachment, details, supply, signature_builds) -> SignatureInfo:
    detail = _text(details.get("detail"))
    if attachment.error:
        detail = f"{detail} {attachment.error}".strip() if detail else attachment.error
    return SignatureInfo(
        digest=attachment.manifest_digest,
        source=attachment.source,
        identity=_text(details.get("identity")),
        issuer=_text(details.get("issuer")),
        verified=details.get("verified") is True and not attachment.error,
        detail=detail or "no detail recorded",
        subject=attachment.subject,
        platform=supply.name,
        rekor_bundle=details.get("rekor_bundle") is True,
        key=_text(details.get("key")),
        build_id=signature_builds.get((build.repository_id, attachment.manifest_digest)),
    )


def _sbom(attachment, details) -> SbomInfo:
    count = (
        attachment.package_count
        if attachment.package_count is not None
        else _count(details.get("package_count"))
    )
    return SbomInfo(
        format=_text(details.get("format")) or "unknown format",
        tool=_text(details.get("tool")),
        package_count=count,
        source=attachment.source,
        digest=attachment.manifest_digest,
    )


def _provenance(attachment, details) -> ProvenanceInfo:
    return ProvenanceInfo(
        builder=_text(details.get("builder")),
        build_type=_text(details.get("build_type")),
        source_repository=_text(details.get("source_repository")),
        source_commit=_text(details.get("source_commit")),
        started_at=_text(details.get("started_at")) or None,
        finished_at=_text(details.get("finished_at")) or None,
        slsa=_text(details.get("slsa")),
        source=attachment.source,
        digest=attachment.manifest_digest,
    )


def _vulnerabilities(attachment, details) -> VulnerabilityInfo:
    raw = details.get("counts") if isinstance(details.get("counts"), dict) else {}
    counts = {severity: _count(raw.get(severity)) or 0 for severity in SEVERITIES}
    total = _count(details.get("total"))
    return VulnerabilityInfo(
        scanner=_text(details.get("scanner")),
        counts=counts,
        total=sum(counts.values()) if total is None else total,
        source=attachment.source,
        digest=attachment.manifest_digest,
    )


def _unreadable(attachment) -> Unreadable:
    return Unreadable(attachment.kind, attachment.source, attachment.manifest_digest, _text(attachment.error))


def _looked(build: Build, checked_at) -> list[str]:
    """Where the poll looks for what describes a build, as it applies to this build's registry."""
    hexadecimal = build.digest.partition(":")[2]
    places = [
        f"cosign's tags sha256-{hexadecimal[:12]}….sig, .att and .sbom in this repository's tag list",
        f"the OCI referrers tag sha256-{hexadecimal[:12]}… (the referrers tag schema)",
    ]
    if build.is_index:
        places.append("the BuildKit attestation manifests in the build's own index")
    api = build.repository.registry.referrers_api
    if api is None:
        places.append("the registry's referrers API: not asked yet")
    elif not api:
        places.append("the registry's referrers API: it has none (it answered 404)")
    elif checked_at is None:
        places.append("the registry's referrers API: not yet asked about this build")
    else:
        places.append(
            f"the registry's referrers API, last asked about this build {checked_at:%Y-%m-%d %H:%M} UTC"
        )
    return places


def _text(value) -> str:
    """A stored string as text; anything else as nothing (a registry sent the wrong type)."""
    return value[:MAX_TEXT] if isinstance(value, str) else ""


def _count(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _ids(value) -> set[int]:
    return {item for item in value if isinstance(item, int)} if isinstance(value, list) else set()


# --- signing flags on tag moves -------------------------------------------------------------------


def signing_changes(events: Iterable) -> dict[int, Signing]:
    """{event id: "unsigned" | "signer_changed"} for the moves among `events` (a page whose builds
    are filled in or not: only their ids are read) that leave a signed build for an unsigned one,
    or for one no signer of the previous build signed. One query for the whole page; none when
    no event moves.

    Signed: a signature was found, whether or not it verified (a key-based cosign signature cannot
    be verified without its key, which tagledger does not have). Computed at read time, as
    signatures are often attached after the push: a later poll can clear or raise a flag.
    """
    moves = [
        event
        for event in events
        if event.build_id and event.previous_build_id and event.build_id != event.previous_build_id
    ]
    if not moves:
        return {}
    ids = {pk for event in moves for pk in (event.build_id, event.previous_build_id)}
    signed: dict[int, set[tuple[str, str]]] = {}
    rows = Attachment.objects.filter(
        build__in=ids, kind=Kind.SIGNATURE, source__in=SIGNATURE_SOURCES
    ).values_list("build_id", "details")
    for build_id, details in rows:
        details = details if isinstance(details, dict) else {}
        signers = signed.setdefault(build_id, set())
        if identity := _text(details.get("identity")):
            signers.add((identity, _text(details.get("issuer"))))
    flags: dict[int, Signing] = {}
    for event in moves:
        before, after = signed.get(event.previous_build_id), signed.get(event.build_id)
        if before is None:
            continue
        if after is None:
            flags[event.pk] = "unsigned"
        elif before and after and not before & after:
            flags[event.pk] = "signer_changed"
    return flags


SIGNING_WORDS = {
    "unsigned": "moved from a signed build to an unsigned one",
    "signer_changed": "moved to a build signed by another identity",
}


# --- compare: packages, signatures, provenance ------------------------------------------------------


@dataclass(frozen=True)
class PackageRow:
    name: str
    type: str
    version: str
    purl: str

    def as_dict(self) -> dict:
        return {"name": self.name, "type": self.type, "version": self.version, "purl": self.purl}


@dataclass(frozen=True)
class PackageChange:
    name: str
    type: str
    before: str
    after: str

    def as_dict(self) -> dict:
        return {"name": self.name, "type": self.type, "from": self.before, "to": self.after}


@dataclass(frozen=True)
class PackageDiff:
    """From the packages of one side to the other's. `a_count`/`b_count`: how many each side has,
    None when it has no SBOM; then there is nothing to compare and the three lists are empty."""

    a_count: int | None
    b_count: int | None
    added: list[PackageRow] = field(default_factory=list)
    removed: list[PackageRow] = field(default_factory=list)
    changed: list[PackageChange] = field(default_factory=list)

    @property
    def comparable(self) -> bool:
        return self.a_count is not None and self.b_count is not None

    @property
    def unchanged(self) -> int:
        return (self.b_count or 0) - len(self.added) - len(self.changed) if self.comparable else 0

    @property
    def differs(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def as_dict(self) -> dict:
        return {
            "added": [row.as_dict() for row in self.added],
            "removed": [row.as_dict() for row in self.removed],
            "changed": [change.as_dict() for change in self.changed],
            "a_count": self.a_count,
            "b_count": self.b_count,
        }


@dataclass(frozen=True)
class PlatformPackages:
    platform: str  # the compare key: os/arch[/variant], `#2` for a repeated one; "" for the builds themselves
    diff: PackageDiff

    def as_dict(self) -> dict:
        return {"platform": self.platform, **self.diff.as_dict()}


@dataclass(frozen=True)
class SupplyChange:
    """A difference in who signed or how it was built: `before` and `after` in words."""

    field: str
    before: str
    after: str
    platform: str = ""  # "" for the build

    def as_dict(self) -> dict:
        return {"field": self.field, "platform": self.platform, "before": self.before, "after": self.after}


@dataclass(frozen=True)
class SupplyComparison:
    """Compare's supply-chain part: packages of the whole builds and per matched platform, and
    differences in signatures and provenance."""

    packages: PackageDiff
    by_platform: list[PlatformPackages]
    changes: list[SupplyChange]
    a: SupplyChain
    b: SupplyChain

    def as_dict(self) -> dict:
        return {
            "packages": self.packages.as_dict(),
            "packages_by_platform": [row.as_dict() for row in self.by_platform],
            "supply_changes": [change.as_dict() for change in self.changes],
        }


def compare(a: Build, b: Build, keys_a: dict[str, Platform], keys_b: dict[str, Platform]) -> SupplyComparison:
    """From `a` to `b`; `keys_a`/`keys_b`: each build's platforms by compare's key (os/arch/variant),
    so platforms match as the rest of compare matches them. Two queries (the attachments, and the
    packages when either side has an SBOM) beyond the platforms compare has loaded."""
    chains = for_builds([a, b] if a.pk != b.pk else [a], attachments_only=True)
    before, after = chains[a.pk], chains[b.pk]
    platforms = []
    for key in sorted(keys_a.keys() | keys_b.keys()):
        one, other = _supply(before, keys_a.get(key)), _supply(after, keys_b.get(key))
        if one is not None and other is not None:
            platforms.append((key, one.package_ids, other.package_ids))
    whole_a, whole_b = _whole_packages(before), _whole_packages(after)
    wanted = set(whole_a or ()) | set(whole_b or ())
    rows = _package_rows(wanted)
    by_platform = [PlatformPackages(key, _diff(ids_a, ids_b, rows)) for key, ids_a, ids_b in platforms]
    return SupplyComparison(
        _diff(whole_a, whole_b, rows), by_platform, _changes(before, after, keys_a, keys_b), before, after
    )


def _supply(chain: SupplyChain, platform: Platform | None) -> PlatformSupply | None:
    return chain.platforms.get(platform.pk) if platform is not None else None


def _whole_packages(chain: SupplyChain) -> frozenset[int] | None:
    """Every package any SBOM of the build names, over its platforms; None when it has no SBOM."""
    sets = [supply.package_ids for supply in chain.platforms.values() if supply.package_ids is not None]
    return frozenset().union(*sets) if sets else None


def _package_rows(ids: set[int]) -> dict[int, PackageRow]:
    if not ids:
        return {}
    wanted = sorted(ids)[:MAX_COMPARED_PACKAGES]
    rows = Package.objects.filter(pk__in=wanted).values_list("pk", "name", "type", "version", "purl")
    return {pk: PackageRow(name, kind, version, purl) for pk, name, kind, version, purl in rows}


def _diff(a: frozenset[int] | None, b: frozenset[int] | None, rows: dict[int, PackageRow]) -> PackageDiff:
    if a is None or b is None:
        return PackageDiff(None if a is None else len(a), None if b is None else len(b))
    return diff_packages(
        [rows[pk] for pk in a - b if pk in rows], [rows[pk] for pk in b - a if pk in rows], len(a), len(b)
    )


def diff_packages(
    only_a: list[PackageRow], only_b: list[PackageRow], a_count: int, b_count: int
) -> PackageDiff:
    """The packages only one side has, as added, removed and changed: the same (type, name) at
    other versions is a change. Several versions of one name on a side (two copies of a library)
    pair in version order, the lowest with the lowest; what is left over is added or removed."""
    old: dict[tuple[str, str], list[PackageRow]] = defaultdict(list)
    new: dict[tuple[str, str], list[PackageRow]] = defaultdict(list)
    for row in only_a:
        old[(row.type, row.name)].append(row)
    for row in only_b:
        new[(row.type, row.name)].append(row)
    added, removed, changed = [], [], []
    for key in sorted(old.keys() | new.keys(), key=lambda key: (key[1].lower(), key[1], key[0])):
        # One version under another purl (a qualifier changed) is no change of version.
        same = {row.version for row in old.get(key, [])} & {row.version for row in new.get(key, [])}
        before = sorted((row for row in old.get(key, []) if row.version not in same), key=_version_order)
        after = sorted((row for row in new.get(key, []) if row.version not in same), key=_version_order)
        pairs = min(len(before), len(after))
        changed += [
            PackageChange(key[1], key[0], x.version, y.version) for x, y in zip(before, after, strict=False)
        ]
        removed += before[pairs:]
        added += after[pairs:]
    return PackageDiff(a_count, b_count, added, removed, changed)


_NUMBER = re.compile(r"(\d+)")


def _version_order(row: PackageRow) -> tuple:
    """Numbers as numbers (`1.10` after `1.9`); then the text, so the order is total."""
    parts = tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in _NUMBER.split(row.version) if part
    )
    return (parts, row.version, row.purl)


def _changes(
    a: SupplyChain, b: SupplyChain, keys_a: dict[str, Platform], keys_b: dict[str, Platform]
) -> list[SupplyChange]:
    changes = _signature_changes(a, b)
    for key in sorted(keys_a.keys() | keys_b.keys()):
        one, other = _supply(a, keys_a.get(key)), _supply(b, keys_b.get(key))
        if one is not None and other is not None:
            changes += _provenance_changes(one, other, key)
    changes += _provenance_changes(a.platforms[None], b.platforms[None], "")
    return changes


def _signature_changes(a: SupplyChain, b: SupplyChain) -> list[SupplyChange]:
    if not a.signed and not b.signed:
        return []
    if not b.signed:
        return [SupplyChange("signature", _signed_words(a), "unsigned")]
    if not a.signed:
        return [SupplyChange("signature", "unsigned", _signed_words(b))]
    changes = []
    identities_a = sorted({identity for identity, _ in a.signers})
    identities_b = sorted({identity for identity, _ in b.signers})
    if identities_a != identities_b:
        changes.append(SupplyChange("signer identity", _listed(identities_a), _listed(identities_b)))
    issuers_a = sorted({issuer for _, issuer in a.signers if issuer})
    issuers_b = sorted({issuer for _, issuer in b.signers if issuer})
    if issuers_a != issuers_b:
        changes.append(SupplyChange("signer issuer", _listed(issuers_a), _listed(issuers_b)))
    verified_a = any(signature.verified for signature in a.signatures)
    verified_b = any(signature.verified for signature in b.signatures)
    if verified_a != verified_b:
        changes.append(SupplyChange("verified", _yes(verified_a), _yes(verified_b)))
    return changes


def _provenance_changes(a: PlatformSupply, b: PlatformSupply, key: str) -> list[SupplyChange]:
    changes = []
    for label, attribute in (("builder", "builder"), ("source", "source_ref"), ("build type", "build_type")):
        before = _listed(sorted({getattr(found, attribute) for found in a.provenance} - {""}))
        after = _listed(sorted({getattr(found, attribute) for found in b.provenance} - {""}))
        if (a.provenance or b.provenance) and before != after:
            changes.append(SupplyChange(label, before, after, key))
    return changes


def _signed_words(chain: SupplyChain) -> str:
    signers = sorted({identity for identity, _ in chain.signers})
    verified = any(signature.verified for signature in chain.signatures)
    who = f" by {_listed(signers)}" if signers else ""
    return f"signed{who} ({'verified' if verified else 'not verified'})"


def _listed(values: list[str]) -> str:
    return ", ".join(values) if values else "none recorded"


def _yes(value: bool) -> str:
    return "yes" if value else "no"
