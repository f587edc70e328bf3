"""The JSON shapes of the read-only API: each model is both the response check and its OpenAPI schema."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from catalog.tags import Kind

from . import compare, pins, search, supply_chain
from .lines import TAG_SORTS
from .models import Attachment, Delivery, PollRun, Subscription, TagEvent


def one_of(values) -> object:
    """A Literal of `values`: the schema's enum is what the model stores, never a copy of it."""
    return Literal[tuple(str(value) for value in values)]


EventKind = one_of(TagEvent.Kind.values)
# The tag lists leave artifact tags out; a name search finds them too.
ListedTagKind = one_of(kind for kind in Kind if kind is not Kind.ARTIFACT)
TagKind = one_of(Kind)
TagSort = one_of(TAG_SORTS)
PollStatus = one_of(PollRun.Status.values)


class Schema(BaseModel):
    """Plain pydantic: every body is a dict from history/serializers.py. Ninja's Schema wraps each
    dict in a getter meant for model instances first, which made checking a page of 100 builds
    8 ms instead of 1 (BENCHMARKS.md, Pages: api_builds)."""

    model_config = ConfigDict(populate_by_name=True)


class Error(Schema):
    detail: str = Field(description="What was wrong, for a person to read.")


class RepositoryOut(Schema):
    id: int
    reference: str = Field(description="registry/name, e.g. 127.0.0.1:5000/demo/python")
    registry: str
    name: str
    last_poll_at: datetime | None = Field(description="When the latest poll started; null: never polled.")
    last_poll_status: PollStatus | None
    tag_count: int = Field(
        description="Tags present now, as many as `/repositories/{id}/tags` lists: signatures and other "
        "artifact tags are not counted here but in `artifact_count`."
    )
    artifact_count: int = Field(
        description="Artifact tags present now: cosign signatures, attestations and SBOMs "
        "(`sha256-<hex>.sig`, `.att`, `.sbom`) and OCI referrers fallback tags (`sha256-<hex>`)."
    )


class TagOut(Schema):
    name: str
    kind: ListedTagKind
    version: str | None = Field(description="The version the name states (3.14 for 3.14-dev); null: none.")
    variant: str = Field(description='"" for the default variant.')
    digest: str = Field(description="The build the tag points to now.")
    since: datetime = Field(description="When a poll first saw it point there.")


class TagPage(Schema):
    items: list[TagOut]
    next: str | None = Field(description="Pass as `cursor` for the next page; null: last page.")


class EventOut(Schema):
    tag: str
    kind: EventKind
    digest: str | None = Field(description="Where the tag points from now on; null when deleted.")
    previous_digest: str | None
    detected_at: datetime = Field(description="The poll that saw the change.")
    not_before: datetime | None = Field(
        description="The last poll that saw the previous state: the change happened after this."
    )
    imported: bool = Field(
        description="A first sighting written by the repository's import (its first poll with tags), "
        "which the changelog pages and feed show as one row."
    )
    signing: Literal["unsigned", "signer_changed"] | None = Field(
        description="A move from a signed build to an unsigned one (`unsigned`), or to a build no signer of "
        "the previous one signed (`signer_changed`); null otherwise. Read from the signatures recorded now, "
        "so a signature attached later clears it."
    )


class EventPage(Schema):
    events: list[EventOut] = Field(
        description="Newest first. Named so since before paged lists took `items`."
    )
    next: str | None = Field(description="Pass as `cursor` for the next (older) page; null: last page.")


class VersionOut(Schema):
    version: str
    line: str
    variant: str
    tags: list[str] = Field(description="The tags on its current build: latest, floating, exact, ... first.")
    current_digest: str | None = Field(
        description="Its current build: where the tag naming the version points (3.14.4-dev, or a tag "
        "spelled like a version from a label), else its newest build a tag points to; null: none."
    )
    build_count: int
    inactive: bool = Field(description="No new build for a while and no floating tag on it: end of life.")


class HeldTagOut(Schema):
    tag: str
    from_: datetime = Field(alias="from")
    until: datetime | None = Field(description="null: it still points here.")


class PlatformOut(Schema):
    os: str
    architecture: str
    variant: str
    digest: str
    config_digest: str = Field(description="The image config's digest; empty when not recorded.")
    image_id: str = Field(description="What `docker images` shows: 12 hex of the config digest.")


class AttestationOut(Schema):
    digest: str = Field(description="The attestation manifest's own digest.")
    media_type: str
    size: int | None = Field(description="Of the manifest itself; null when not recorded.")
    subject: str | None = Field(description="Digest of the platform image it describes; null: unknown.")
    platform: str | None = Field(
        description="os/architecture[/variant] of that image, when it is a platform here."
    )
    predicate_types: list[str] = Field(
        description="Of its in-toto statements: https://spdx.dev/Document, ..."
    )


class BuildOut(Schema):
    digest: str
    timestamp_tag: str | None
    first_seen: datetime
    last_seen: datetime = Field(description="The last poll that saw a tag pointing here.")
    tags: list[HeldTagOut] = Field(description="Every tag that pointed here, and when, oldest first.")
    platforms: list[PlatformOut]
    attestations: list[AttestationOut] = Field(
        description="BuildKit attestation manifests (SBOM, provenance) of its platform images."
    )


class BuildPage(Schema):
    items: list[BuildOut] = Field(description="At most `limit` builds, newest first.")
    next: str | None = Field(description="Pass as `cursor` for the next (older) page; null: last page.")


class PeriodOut(Schema):
    digest: str | None = Field(description="Where the tag pointed; null while deleted or untracked.")
    from_: datetime = Field(alias="from", description="The poll that saw it point here (detected_at).")
    until: datetime | None = Field(description="The poll that saw its next change; null: it still does.")
    not_before: datetime | None = Field(
        description="The last poll that saw the previous state: the change happened after this and before "
        "`from`. Null on the first sighting."
    )
    version: str | None = Field(description="The build's version (3.14.4, 3.14.4-slim); null: none.")
    timestamp_tag: str | None = Field(
        description="A timestamp tag of the build (3.14.4-202611261200), if any."
    )
    kind: EventKind = Field(description="The change that began it: created (first seen), moved, deleted, ...")
    build: int | None = Field(description="The build's id; null with `digest`.")
    previous_digest: str | None = Field(
        description="Where the tag pointed before; null on the first sighting."
    )
    pin: str | None = Field(
        description="registry/name:tag@digest: pulls exactly this build; null with `digest`."
    )
    signing: Literal["unsigned", "signer_changed"] | None = Field(
        description="The move that began it left a signed build for an unsigned one (`unsigned`) or for one "
        "no signer of the previous build signed (`signer_changed`); null otherwise. As on the events."
    )


class TagHistoryPage(Schema):
    items: list[PeriodOut] = Field(description="At most `limit` periods, newest first.")
    next: str | None = Field(description="Pass as `cursor` for the next (older) page; null: last page.")


class MatchOut(Schema):
    digest: str = Field(description="The build's own digest: what its tags point to.")
    matched: search.Matched
    matched_digest: str = Field(
        description="The digest that matched: the build's, a platform's, a config's or an attestation's."
    )
    platform: str | None = Field(description="os/architecture[/variant] of the platform that matched.")
    image_id: str | None = Field(description="That platform's image ID, when a platform or config matched.")
    layer_platforms: list[str] = Field(
        description='matched "layer": the platforms (os/architecture[/variant]) that contain the layer.'
    )
    repository: str
    reference: str = Field(description="name@digest: the build, pinned.")
    media_type: str
    version: str | None
    created: datetime | None = Field(description="From the image config, if it says.")
    built_at: datetime | None = Field(description="From the build's timestamp tag, if it has one.")
    first_seen: datetime
    last_seen: datetime
    platforms: list[PlatformOut]
    tags: list[HeldTagOut]
    url: str = Field(description="The build's page.")


class NamedRepository(Schema):
    reference: str


class NamedTag(Schema):
    repository: str
    tag: str
    reference: str
    kind: TagKind
    digest: str | None
    present: bool


class NamedVersion(Schema):
    repository: str
    version: str
    variant: str
    builds: int | None


class NameMatches(Schema):
    repositories: list[NamedRepository]
    tags: list[NamedTag]
    versions: list[NamedVersion]


class SearchOut(Schema):
    query: str
    kind: search.Kind = Field(description="How the query was read.")
    truncated: bool = Field(description="More builds matched than are listed: `next` continues with them.")
    note: str | None = Field(
        description="How a reference's name was read when that was not plain: several watched repositories "
        "end in it (the builds of each are listed), or none does."
    )
    items: list[MatchOut] = Field(description="The builds found, newest first, at most 50 a page.")
    next: str | None = Field(description="Pass as `cursor` for older matching builds; null: last page.")
    names: NameMatches = Field(description="For a name query: repositories, tags and versions by name.")


class CompareError(Error):
    candidates: list[str] = Field(
        default_factory=list, description="name@digest of each build the text could mean: pick one."
    )


class SideOut(Schema):
    id: int
    repository: str
    reference: str
    digest: str
    media_type: str
    version: str | None
    created: datetime | None
    first_seen_at: datetime
    built_at: datetime | None
    size: int
    platforms: list[str]
    tags: list[HeldTagOut]


class SizeOut(Schema):
    platform: str
    a: int | None
    b: int | None
    delta: int


class PlatformImageOut(Schema):
    digest: str
    media_type: str
    config_digest: str
    image_id: str
    size: int
    layers: int
    created: datetime | None


class LayerOut(Schema):
    digest: str
    size: int
    media_type: str
    status: compare.LayerStatus


class LayersOut(Schema):
    shared: int
    added: int
    removed: int
    shared_size: int
    added_size: int
    removed_size: int
    rows: list[LayerOut]


class ValueChangeOut(Schema):
    field: str
    before: str | list[str]
    after: str | list[str]


class KeyChangeOut(Schema):
    key: str
    change: compare.KeyChangeKind
    before: str | None
    after: str | None


class HistoryStepOut(Schema):
    created_by: str
    comment: str
    empty_layer: bool
    status: Literal["added", "removed"]


class PlatformDiffOut(Schema):
    platform: str
    status: compare.PlatformStatus
    a: PlatformImageOut | None
    b: PlatformImageOut | None
    image_id_changed: bool
    size_delta: int | None
    layers: LayersOut
    config: list[ValueChangeOut]
    env: list[KeyChangeOut]
    labels: list[KeyChangeOut]
    history: list[HistoryStepOut]


class CompareOut(Schema):
    same: bool = Field(description="The same digest: nothing can differ.")
    a: SideOut
    b: SideOut
    size_delta: int
    sizes: list[SizeOut]
    platforms_added: list[str]
    platforms_removed: list[str]
    platforms_changed: list[str]
    platforms_unchanged: list[str]
    platforms: list[PlatformDiffOut]
    annotations: list[KeyChangeOut]
    packages: "PackageDiffOut" = Field(
        description="Every package of either build (all platforms' SBOMs together): added, removed, changed."
    )
    packages_by_platform: list["PlatformPackagesOut"] = Field(
        description="The same for each platform both builds have, matched by os/architecture/variant."
    )
    supply_changes: list["SupplyChangeOut"] = Field(
        description="Differences in signatures (signed, signer, verified) and provenance (builder, source)."
    )


class PinOut(Schema):
    line: int = Field(description="1-based, counting every line given, so it can be found again.")
    text: str
    status: pins.Status = Field(
        description="current; behind (an older build of the tag, its version or, for a floating tag, its "
        "line); ahead (a newer build of the tag's version or line than the tag points to); "
        "not_a_build_of_tag (what it is instead: `what_it_is`); unknown (see `unknown`); invalid; no_digest."
    )
    message: str = Field(description="The verdict in plain sentences, with the pin to use now.")
    reference: str | None
    repository: str | None
    tag: str | None
    digest: str | None = Field(description="As pinned.")
    build_digest: str | None = Field(description="The build the pinned digest is, or belongs to.")
    platform: str | None = Field(description="The pinned digest is this platform's image of that build.")
    current_digest: str | None = Field(description="Where the tag points now.")
    current_reference: str | None = Field(description="What to pin instead.")
    builds_behind: int | None = Field(
        description="How far behind, by the measure `known_from` names: `tag`, the builds the tag moved "
        "through since it last left the pin (for a tag naming a version, that version's newer builds); "
        "`version`, the version's builds newer than the pin; `line`, the newer builds of the floating "
        "tag's line."
    )
    newer_builds: int | None = Field(
        description="Builds of the pinned build's version newer than it, in the version page's order."
    )
    known_from: pins.KnownFrom | None = Field(
        description="Behind or ahead: `tag` (the tag was seen on the build), `version` (a build of the tag's "
        "version, known from its history, e.g. its timestamp tag) or `line` (of a version the floating tag's "
        "line covers)."
    )
    version: str | None = Field(description="The pinned build's version.")
    built_at: datetime | None = Field(description="The pinned build's time, from its timestamp tag.")
    first_seen_at: datetime | None = Field(description="When a poll first saw the pinned build.")
    what_it_is: str | None = Field(
        description="When the digest is no build of the tag: what tagledger knows it as (another version's "
        "build, a platform image, an image ID, an attestation, a signature, or in another repository)."
    )
    version_inactive: bool = Field(
        description="The version the tag points into now gets no new builds and no floating tag points to it."
    )
    held_by: list[str]
    unknown: pins.Unknown | None
    confirmed_at: datetime | None = Field(description="The last poll that saw the tag where it points now.")
    compare_url: str | None = Field(description="The compare page from the pinned build to the current one.")


class PinFailureOut(Schema):
    line: int = Field(description="The failing pin's line, as in `pins`.")
    text: str
    reference: str | None
    status: pins.Status
    reason: str = Field(description="Why the policy refuses it, in one sentence.")


class PinCheckOut(Schema):
    ok: bool = Field(description="Every pin passes the policy: the CI gate's verdict.")
    failed: list[PinFailureOut] = Field(description="The pins that fail, in input order.")
    pins: list[PinOut] = Field(description="Every pin checked, as `GET /api/v1/pins` answers them.")


class PinListIn(BaseModel):
    """A saved pin list: a name and the text the pin check reads (a Dockerfile, a compose file, or
    one reference per line), stored as given."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="Printable characters, one line.")
    text: str = Field(
        min_length=1,
        max_length=pins.MAX_INPUT,
        description=f"At least one image reference, at most {pins.MAX_REFERENCES}; other lines are kept.",
    )


class PinListOut(Schema):
    id: int
    name: str
    owner: str | None = Field(description="Who saved it (null once that user is removed).")
    created_at: datetime
    updated_at: datetime
    counts: dict[pins.Status, int] = Field(description="Its pins per status now; those with none left out.")


class PinListPage(Schema):
    items: list[PinListOut] = Field(description="Newest first.")
    next: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


class PinListDetail(PinListOut):
    text: str = Field(description="As saved.")
    pins: list[PinOut] = Field(description="Each reference line checked now, as `GET /api/v1/pins` answers.")


class PackageOut(Schema):
    name: str
    version: str = Field(description="As the SBOM states it; empty when it states none.")
    type: str = Field(description="The purl type: deb, apk, rpm, npm, pypi, …; empty when unknown.")
    purl: str = Field(description="The package URL, normalised; empty when the SBOM gives none.")


class PackagePage(Schema):
    items: list[PackageOut] = Field(description="At most `limit` packages, by name, version and purl.")
    next: str | None = Field(description="Pass as `cursor` for the next page; null: last page.")


class PackageBuildOut(Schema):
    repository: str = Field(description="registry/name")
    digest: str = Field(description="The build's own digest: what its tags point to.")
    version: str | None = Field(description="The build's version; null: unknown.")
    variant: str
    platforms: list[str] = Field(
        description="os/architecture[/variant] of the platforms whose SBOMs name the package (an SBOM of "
        "the build's own digest counts for each of its platforms)."
    )
    package_version: str = Field(
        description="The version(s) of the package the build holds, comma-separated."
    )
    current: bool = Field(description="A tag points at the build now.")


class PackageSearchPage(Schema):
    items: list[PackageBuildOut] = Field(description="Builds whose SBOMs name the package, newest first.")
    next: str | None = Field(description="Pass as `cursor` for older builds; null: last page.")


# --- a build's supply chain (issue 13) ------------------------------------------------------------

AttachmentSource = one_of(Attachment.Source.values)
SignatureSource = one_of(supply_chain.SIGNATURE_SOURCES)


class SignatureOut(Schema):
    digest: str = Field(
        description="The manifest that carries the signature (a cosign .sig manifest, a referrer)."
    )
    source: SignatureSource = Field(
        description="Where the poll found it: the referrers API, the referrers tag schema (sha256-<hex>) "
        "or a cosign tag (sha256-<hex>.sig)."
    )
    identity: str = Field(description="The signer: the Fulcio certificate's SAN (e-mail, URI); empty: none.")
    issuer: str = Field(description="The OIDC issuer the certificate names; empty: none.")
    verified: bool = Field(
        description="The signature verifies over its payload with the certificate's key and the payload "
        "names this digest. No trust root is fetched (offline): the certificate chain and Rekor are "
        "not checked."
    )
    detail: str = Field(
        description="Exactly what was verified and what was not, or why it could not be read."
    )


class StatementOut(Schema):
    digest: str = Field(description="The attestation manifest that carries the in-toto statement.")
    predicate_type: str = Field(description="https://spdx.dev/Document, https://slsa.dev/provenance/v1, ...")


class SbomOut(Schema):
    format: str = Field(description='"SPDX 2.3", "CycloneDX 1.5", ...')
    tool: str
    package_count: int | None = Field(description="Packages this SBOM names; null: not known.")
    source: AttachmentSource
    digest: str = Field(description="The manifest that carries it.")


class ProvenanceOut(Schema):
    builder: str
    build_type: str
    source_repository: str
    source_commit: str
    started_at: str | None = Field(description="As the statement says it (ISO 8601); null: not said.")
    finished_at: str | None
    slsa: str = Field(description='"v0.2", "v1", or "" for another predicate.')
    source: AttachmentSource
    digest: str


class SeverityCounts(Schema):
    critical: int
    high: int
    medium: int
    low: int
    unknown: int


class VulnerabilitiesOut(Schema):
    scanner: str
    counts: SeverityCounts
    total: int
    source: AttachmentSource
    digest: str


class UnreadableOut(Schema):
    kind: one_of(Attachment.Kind.values)
    source: AttachmentSource
    digest: str
    error: str = Field(description="Why it could not be read: this attachment alone.")


class SupplyOut(Schema):
    attestations: list[StatementOut] = Field(
        description="In-toto statements about it, from BuildKit and every other source, one per "
        "predicate type."
    )
    packages_count: int | None = Field(
        description="Distinct packages its SBOMs name together; null: no SBOM was read. The list: "
        "/api/v1/builds/{digest}/packages?platform=os/arch."
    )
    sboms: list[SbomOut]
    provenance: list[ProvenanceOut]
    vulnerabilities: list[VulnerabilitiesOut] = Field(description="Scan reports, counted by severity.")
    unreadable: list[UnreadableOut] = Field(description="Attachments found but not read, each with why.")


class PlatformSupplyOut(PlatformOut, SupplyOut):
    pass


class BuildSupplyOut(Schema):
    digest: str
    repository: str = Field(description="registry/name")
    version: str | None = Field(description="The version it is a build of; null: none.")
    variant: str = Field(description='"" for the default variant.')
    media_type: str
    first_seen: datetime
    tags: list[HeldTagOut] = Field(description="Every tag that pointed here, and when, oldest first.")
    platforms: list[PlatformSupplyOut]
    build_itself: SupplyOut = Field(
        description="What describes the build's own digest (an index), or platform images it does not record."
    )
    signatures: list[SignatureOut] = Field(description="Of the build and of its platform images.")
    url: str = Field(description="The build's page.")


class AmbiguousOut(Error):
    candidates: list[str] = Field(
        description="registry/name of each repository that has it: pass one as `repository`."
    )


class PackageChangeOut(Schema):
    name: str
    type: str
    from_: str = Field(alias="from")
    to: str


class PackageDiffOut(Schema):
    added: list[PackageOut]
    removed: list[PackageOut]
    changed: list[PackageChangeOut] = Field(description="The same type and name at another version.")
    a_count: int | None = Field(description="Packages of `a`; null: no SBOM, and the lists are empty.")
    b_count: int | None = Field(description="Packages of `b`; null: no SBOM, and the lists are empty.")


class PlatformPackagesOut(PackageDiffOut):
    platform: str = Field(description="A platform both builds have (os/architecture[/variant]).")


class SupplyChangeOut(Schema):
    field: str = Field(
        description="signature, signer identity, signer issuer, verified, builder, source, build type"
    )
    platform: str = Field(description='The platform it concerns; "" for the build.')
    before: str
    after: str


CompareOut.model_rebuild()  # its supply-chain fields are defined after it


# --- notifications (staff only): subscriptions and the delivery log ------------------------------

SubscriptionFormat = one_of(Subscription.Format.values)
DeliveryStatus = one_of(Delivery.Status.values)


class SubscriptionIn(BaseModel):
    """A new subscription; each empty choice takes everything."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048, description="The webhook: http or https, a host allowed as a target.")
    format: SubscriptionFormat = "json"
    secret: str | None = Field(
        default=None, min_length=1, max_length=256, description="The HMAC key; null: one is made."
    )
    name: str = Field(default="", max_length=100)
    repository: int | None = Field(default=None, ge=1, le=2**63 - 1, description="A repository's id.")
    tag_pattern: str = Field(default="", max_length=512, description="A regular expression a tag must match.")
    kinds: list[str] = Field(
        default=[], max_length=20, description="Event kinds and signing flags; [] = all."
    )
    line: str | None = Field(default=None, max_length=260, description="A line of `repository`, e.g. 3.14.")
    version: str | None = Field(default=None, max_length=260, description="A version of `repository`.")
    pin_list: int | None = Field(default=None, ge=1, le=2**63 - 1, description="A saved pin list's id.")


class SubscriptionOut(Schema):
    id: int
    name: str
    url: str = Field(description="Masked: scheme, host and the last 4 characters (the path may be a key).")
    format: SubscriptionFormat
    repository: str | None
    repository_id: int | None
    tag_pattern: str
    kinds: list[str]
    line: str | None
    version: str | None
    pin_list: str | None
    pin_list_id: int | None
    filters: str = Field(description="What it hears, in words.")
    enabled: bool
    disabled_at: datetime | None
    disabled_reason: str
    consecutive_failures: int
    last_status: DeliveryStatus | None = Field(description="Of its newest delivery; null before the first.")
    created_at: datetime


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(description="The signing secret: shown in this response only.")


class DeliverySubscriptionOut(Schema):
    id: int
    name: str
    url: str = Field(description="Masked, as the subscription's.")


class DeliveryOut(Schema):
    id: int
    key: str = Field(description="X-Tagledger-Delivery: the same on every attempt (idempotency).")
    subscription: DeliverySubscriptionOut
    status: DeliveryStatus
    test: bool
    events: int = Field(description="How many tag events it carries.")
    attempts: int
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None = Field(description="When a pending delivery is tried again.")
    delivered_at: datetime | None
    response_code: int | None
    latency_ms: int | None = Field(description="Of the last attempt.")
    error: str = Field(description="Why the last attempt failed, cut to 300 characters.")


class DeliveryPage(Schema):
    items: list[DeliveryOut] = Field(description="Newest first.")
    next: str | None = Field(description="Pass as `cursor` for the next (older) page; null: last page.")
