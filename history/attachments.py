"""What a poll reads of its builds' supply chain: signatures, attestations and SBOMs from the four
places registries keep them, each document stored as one Attachment.

1. BuildKit: the attestation manifests a new build's index holds (the poll has them already):
   each in-toto statement layer is one blob GET.
2. cosign tags `sha256-<hex>.sig|.att|.sbom`: the poll HEADs and stores them like any tag; when one
   names a build new in this poll, its layers are read (a blob GET each) and attached to the build
   (or platform image) its name gives. One whose subject is not recorded in the repository is
   left alone, and later polls do not come back to it (they fetch only new builds).
3. The referrers tag schema `sha256-<hex>`: an index listing the referrers of that digest; the poll
   has already read its entries as it reads any index, so only their layers cost a blob GET each.
4. The OCI 1.1 referrers API, on registries that have it: the digest of each new build and of its
   platform images is asked about (a request each, more for more pages), and then, since
   signatures come after the push, the builds tags point to now again every
   TAGLEDGER_REFERRERS_RECHECK seconds, at most TAGLEDGER_REFERRERS_RECHECK_BUILDS a poll, the
   longest unasked first. Only referrers not stored yet are read (a manifest GET, then its
   layers). Whether a registry has the API is kept on the Registry and asked again after a day, so
   one without it pays one request a day, none on an unchanged re-poll.

Every read fails alone: a document that cannot be fetched or parsed is an Attachment whose `error`
says why, never a failure of its build, its tag or the poll. A 429, or the poll's deadline, ends
the reading (the poll's Budget says so); what was not read is stored as not read, except a
referrer, which the next re-check asks for again. No database transaction is open during HTTP:
the reading runs on its own threads, and rows are written after.
"""

import json
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.utils import timezone

from catalog.models import Registry, Repository
from catalog.oci import mediatypes
from catalog.oci.client import RegistryClient
from catalog.oci.errors import BadResponse, RateLimited, RegistryError
from catalog.oci.manifest import Descriptor, Manifest, json_object
from catalog.tags import Kind as TagKind
from catalog.tags import classify
from catalog.text import clipped

from . import signatures, supply
from .models import Attachment, Build, Platform, ReferrersCheck, TagState
from .packages import package_set
from .sbom import UnreadableDocument
from .statements import DSSE, MAX_DOCUMENT_BYTES, read_document

log = logging.getLogger(__name__)

Source, Kind = Attachment.Source, Attachment.Kind

# What one poll reads of one build, whatever a registry lists: a build has a handful of documents
# (an SBOM and a provenance per platform, a signature or two), so these are generous.
MAX_DOCUMENTS = 100  # blobs read for one build in one poll
MAX_LAYERS = 16  # layers read of one artifact or attestation manifest
MAX_REFERRERS = 32  # referrer manifests read for one subject (an API answer or a tag-schema index)
MAX_SUBJECT_PLATFORMS = 16  # platform images of one build asked about (referrers API)
MAX_TARGETS = 8  # builds one subject digest attaches to (a platform image shared by several indexes)
# Documents in flight at once: each may hold MAX_DOCUMENT_BYTES, so not the poll's 64 threads.
THREADS = 4
# Whether a registry has the referrers API is asked again after this long.
API_MEMORY = timedelta(days=1)
# cosign v3 signs an image as a bundle whose DSSE statement has this predicate: a signature, not
# an attestation (every other predicate in a bundle is an attestation, read for its statement).
COSIGN_SIGN = "https://sigstore.dev/cosign/sign/v1"
MAX_ERROR = 1000

Target = tuple[Build, Platform | None]


@dataclass(frozen=True)
class Budget:
    """What the poll allows: `skipped()` says why no request may go out now (its deadline, a
    429), `note(error)` hands it a registry error (a 429 pauses the registry, as anywhere)."""

    skipped: Callable[[], str | None]
    note: Callable[[RegistryError], object]


@dataclass(frozen=True)
class New:
    """A build this poll stored, with what its fetch read that its supply chain needs (no bodies)."""

    build: Build
    manifest: Manifest
    # (the platform image described, the attestation manifest's digest, its layers)
    attestations: tuple[tuple[str, str, tuple[Descriptor, ...]], ...] = ()
    # index entries read that are no image (artifacts listed by a tag-schema index): digest -> manifest
    children: dict[str, Manifest] = field(default_factory=dict)

    @classmethod
    def of(cls, build: Build, fetched) -> "New":
        """From history.polling's Fetched."""
        return cls(
            build=build,
            manifest=replace(fetched.manifest, body=b""),
            attestations=tuple(
                (subject, manifest.digest, manifest.layers[:MAX_LAYERS])
                for subject, manifest in fetched.attestations
            ),
            children={
                image.digest: replace(image, body=b"")
                for _, image, config in fetched.platforms
                if config is None and image.digest != fetched.manifest.digest
            },
        )


@dataclass
class Found:
    """One document read, or why it was not."""

    subject: str
    source: str
    kind: str
    manifest_digest: str
    blob_digest: str = ""
    position: int = 0  # the layer's place in its manifest
    media_type: str = ""
    predicate_type: str = ""
    details: dict = field(default_factory=dict)
    packages: tuple | None = None  # of an SBOM (history.sbom.Package)
    error: str = ""
    retry: bool = False  # not read for now (429, deadline, a 5xx): a referrer is asked for again


Job = Callable[[], tuple[list[tuple[list[Target], Found]], list["Job"]]]


class _NotRead(Exception):
    """A document not read: `retry` when later may do better; `answered` when the registry said
    something (an error answer), rather than the poll not asking (its deadline, a 429 before)."""

    def __init__(self, reason: str, retry: bool, answered: bool = False):
        super().__init__(reason)
        self.retry = retry
        self.answered = answered


def discover(
    client: RegistryClient,
    repository: Repository,
    new: list[New],
    tags: dict[str, str],
    budget: Budget,
    *,
    now: datetime | None = None,
) -> int:
    """Read and store the supply chain of the builds `new` to this poll, and re-ask the referrers
    API about builds due for it; `tags` is every tag the poll saw and the digest it points to.
    Returns the number of Attachment rows stored."""
    now = now or timezone.now()
    reading = _Reading(client, repository, budget)
    referrers = _ReferrersApi(reading, repository.registry, now)
    asked = _subjects_of_new(new, tags)
    if referrers.known() is not False:
        asked += _due_for_recheck(repository, new, now)
    platforms = _platforms([item.build for item in new] + asked)
    jobs = [*_buildkit(reading, new, platforms), *_artifact_tags(reading, repository, new, tags)]
    jobs += referrers.jobs(_subjects_of(asked, platforms))
    found = reading.run(jobs)
    stored = store(found, at=now)
    referrers.finish()
    return stored


# --- 1. BuildKit attestation manifests ----------------------------------------------------------


def _buildkit(reading: "_Reading", new: list[New], platforms) -> list[Job]:
    jobs = []
    for item in new:
        for subject, manifest_digest, layers in item.attestations:
            target = [(item.build, platforms.get((item.build.pk, subject)))]
            for position, layer in enumerate(layers):
                if layer.media_type != supply.IN_TOTO:
                    continue  # BuildKit writes only statements; anything else is no document of it
                base = Found(
                    subject=subject or item.build.digest, source=Source.BUILDKIT, kind=Kind.ATTESTATION,
                    manifest_digest=manifest_digest, blob_digest=layer.digest, position=position,
                    media_type=layer.media_type, predicate_type=supply.predicate_type(layer),
                )  # fmt: skip
                jobs.append(reading.layer_job(target, base, layer, item.build.digest))
    return jobs


# --- 2 and 3. cosign tags and the referrers tag schema -------------------------------------------


def _artifact_tags(reading: "_Reading", repository: Repository, new: list[New], tags: dict[str, str]):
    """Jobs for the artifact tags pointing at builds new in this poll. cosign re-pushes its tag
    with one layer more for each new signature, and oras its index with one entry more: what was
    read from the tag's earlier manifest is not read again."""
    by_digest = {item.build.digest: item for item in new}
    named = []
    for name, digest in sorted(tags.items()):
        if digest in by_digest and (info := classify(name)).artifact:
            named.append((info, by_digest[digest]))
    targets = _targets(repository, {info.subject_digest for info, _ in named})
    stored = _stored([target[0][0] for target in targets.values()], (Source.COSIGN_TAG, Source.TAG_SCHEMA))
    jobs = []
    for info, item in named:
        target = targets.get(info.subject_digest)
        if not target:
            log.info(
                "%s: %s names %s, not recorded here: not read", repository, info.name, info.subject_digest
            )
            continue
        read = stored.get(target[0][0].pk, set())
        if info.artifact == "referrers":
            jobs += _tag_schema(reading, target, info.subject_digest, item, read)
        elif not item.manifest.is_index and not item.manifest.legacy:
            jobs += reading.artifact_jobs(
                target, info.subject_digest, Source.COSIGN_TAG, item.manifest, stored=read
            )
    return jobs


def _tag_schema(reading: "_Reading", target: list[Target], subject: str, item: New, stored: set) -> list[Job]:
    """The referrers a `sha256-<hex>` index lists, those not read before: read as the poll read
    them (index entries it has fetched), or fetched here (one GET each) when it did not (an
    entry of a platform the repository does not record, say)."""
    if not item.manifest.is_index:
        return []
    jobs = []
    for descriptor in _unique(item.manifest.manifests)[:MAX_REFERRERS]:
        if descriptor.digest not in stored:
            known = item.children.get(descriptor.digest)
            jobs.append(reading.referrer_job(target, subject, Source.TAG_SCHEMA, descriptor, known))
    return jobs


def _targets(repository: Repository, subjects: set[str]) -> dict[str, list[Target]]:
    """The builds each digest names in `repository`: the build of that digest (with its platform
    of the same digest, for a single-platform image), or the builds holding it as a platform image."""
    if not subjects:
        return {}
    found: dict[str, list[Target]] = {}
    for build in Build.objects.filter(repository=repository, digest__in=subjects):
        found[build.digest] = [(build, None)]
    platforms = Platform.objects.filter(build__repository=repository, digest__in=subjects).select_related(
        "build"
    )
    for platform in platforms.order_by("pk"):
        if platform.build.digest == platform.digest:
            found[platform.digest] = [(platform.build, platform)]
        elif platform.digest not in found or found[platform.digest][0][1] is not None:
            found.setdefault(platform.digest, []).append((platform.build, platform))
    return {subject: targets[:MAX_TARGETS] for subject, targets in found.items()}


# --- 4. the referrers API -------------------------------------------------------------------------


class _ReferrersApi:
    """Asks the referrers API about builds, on registries that have it, remembering whether one does."""

    def __init__(self, reading: "_Reading", registry: Registry, now: datetime):
        self.reading = reading
        self.registry = registry
        self.now = now
        self.lock = threading.Lock()
        self.checked: dict[int, int] = {}  # build id -> referrers listed, for builds fully asked
        self.answer: bool | None = None  # what this poll learnt of the API

    def known(self) -> bool | None:
        """Whether the registry has the API as last asked; None when it is time to ask (again)."""
        checked_at = self.registry.referrers_api_checked_at
        if self.registry.referrers_api is None or checked_at is None or checked_at < self.now - API_MEMORY:
            return None
        return self.registry.referrers_api

    def jobs(self, builds: list[tuple[Build, dict[str, Platform | None]]]) -> list[Job]:
        """A job per build listing its subjects' referrers. When the API is not known, the first
        build is asked here, before anything else: its first answer decides for the rest."""
        if not builds or self.known() is False:
            return []
        known = _stored_referrers([build for build, _ in builds])
        jobs = [self._job(build, subjects, known) for build, subjects in builds]
        if self.known() is None:
            _, more = jobs.pop(0)()
            if self.answer is not True:
                return []
            jobs += more
        return jobs

    def _job(self, build: Build, subjects: dict[str, Platform | None], known: dict[int, set[str]]) -> Job:
        def job():
            if self.answer is False:
                return [], []
            jobs, listed = [], 0
            for subject, platform in subjects.items():
                try:
                    descriptors = self.reading.list_referrers(subject)
                except _NotRead as error:
                    log.info("%s: the referrers of %s not read: %s", self.registry, subject, error)
                    with self.lock:
                        if self.answer is None and error.answered and self.known() is None:
                            # The first question failed: a registry whose referrers route answers
                            # garbage or 5xx is taken as one without the API (go-containerregistry
                            # falls back on such answers too), asked again after API_MEMORY, rather
                            # than asked on every poll, an unchanged re-poll included.
                            self.answer = False
                    return [], jobs  # not marked checked: asked again by the next poll's re-check
                with self.lock:
                    self.answer = descriptors is not None
                if descriptors is None:
                    return [], []
                listed += len(descriptors)
                for descriptor in _unique(descriptors)[:MAX_REFERRERS]:
                    if descriptor.digest not in known.get(build.pk, ()):
                        target = [(build, platform)]
                        jobs.append(self.reading.referrer_job(target, subject, Source.REFERRERS, descriptor))
            with self.lock:
                self.checked[build.pk] = listed
            return [], jobs

        return job

    def finish(self) -> None:
        """Keep what was learnt: whether the registry has the API, and which builds were asked."""
        if self.answer is not None and (self.answer != self.registry.referrers_api or self.known() is None):
            Registry.objects.filter(pk=self.registry.pk).update(
                referrers_api=self.answer, referrers_api_checked_at=self.now
            )
            self.registry.referrers_api, self.registry.referrers_api_checked_at = self.answer, self.now
        if self.checked and self.answer:
            ReferrersCheck.objects.bulk_create(
                [ReferrersCheck(build_id=pk, checked_at=self.now, referrers=count)
                 for pk, count in self.checked.items()],
                update_conflicts=True, unique_fields=["build"], update_fields=["checked_at", "referrers"],
            )  # fmt: skip


def _subjects_of_new(new: list[New], tags: dict[str, str]) -> list[Build]:
    """The new builds to ask the API about: those a tag other than an artifact tag points to
    (a signature's own manifest has no referrers worth a request)."""
    wanted = {digest for name, digest in tags.items() if not classify(name).artifact}
    return [item.build for item in new if item.build.digest in wanted]


def _subjects_of(builds: list[Build], platforms) -> list[tuple[Build, dict[str, Platform | None]]]:
    """Each build with the digests to ask about, the build's own and its platform images', each
    with the platform it names (a single-platform build's one platform has the build's digest)."""
    of_build: dict[int, list[Platform]] = {}
    for (build_id, _), platform in platforms.items():
        of_build.setdefault(build_id, []).append(platform)
    found = []
    for build in builds:
        images = of_build.get(build.pk, [])[:MAX_SUBJECT_PLATFORMS]
        subjects: dict[str, Platform | None] = {build.digest: None}
        for platform in images:
            subjects[platform.digest] = platform
        found.append((build, subjects))
    return found


def _due_for_recheck(repository: Repository, new: list[New], now: datetime) -> list[Build]:
    """The builds tags point to now (artifact tags aside) whose referrers were last asked about
    longer ago than TAGLEDGER_REFERRERS_RECHECK, or never: the longest unasked first, at most
    TAGLEDGER_REFERRERS_RECHECK_BUILDS."""
    limit = settings.TAGLEDGER_REFERRERS_RECHECK_BUILDS
    if not limit:
        return []
    pointed = (
        TagState.objects.filter(tag__repository=repository, present=True)
        .exclude(tag__kind=TagKind.ARTIFACT)
        .values("build")
    )
    since = now - timedelta(seconds=settings.TAGLEDGER_REFERRERS_RECHECK)
    due = (
        Build.objects.filter(repository=repository, pk__in=pointed)
        .exclude(pk__in=[item.build.pk for item in new])
        .filter(Q(referrers_check__isnull=True) | Q(referrers_check__checked_at__lt=since))
        .order_by(F("referrers_check__checked_at").asc(nulls_first=True), "pk")
    )
    return list(due[:limit])


def _stored_referrers(builds: list[Build]) -> dict[int, set[str]]:
    """The referrer manifests already stored for each build: not read again."""
    return _stored(builds, (Source.REFERRERS,))


def _stored(builds: list[Build], sources: tuple[str, ...]) -> dict[int, set[str]]:
    """What is already stored for each build from `sources`, in one query: each manifest digest,
    and each layer as (blob digest, place)."""
    if not builds:
        return {}
    known: dict[int, set[str]] = {}
    rows = Attachment.objects.filter(build__in=builds, source__in=sources)
    for build_id, manifest, blob, position in rows.values_list(
        "build_id", "manifest_digest", "blob_digest", "position"
    ):
        known.setdefault(build_id, set()).update([manifest, (blob, position)])
    return known


# --- reading: HTTP only, on the reading's threads -------------------------------------------------


class _Reading:
    """The requests of one poll's supply-chain step, bounded per build, on THREADS threads."""

    def __init__(self, client: RegistryClient, repository: Repository, budget: Budget):
        self.client = client
        self.repository = repository
        self.budget = budget
        self.lock = threading.Lock()
        self.documents: dict[str, int] = {}  # build digest -> blobs asked for

    def run(self, jobs: list[Job]) -> list[tuple[list[Target], Found]]:
        found: list[tuple[list[Target], Found]] = []
        if not jobs:
            return found
        with ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="supply chain") as pool:
            pending = {pool.submit(job) for job in jobs}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    try:
                        rows, more = future.result()
                    except Exception:  # a bug, not a registry's doing: that document alone
                        log.exception("%s: reading a supply-chain document failed", self.repository)
                        continue
                    found += rows
                    pending |= {pool.submit(job) for job in more}
        return found

    # requests

    def _asked(self) -> None:
        if reason := self.budget.skipped():
            raise _NotRead(reason, retry=True)

    def _failed(self, error: RegistryError) -> _NotRead:
        self.budget.note(error)
        reason = clipped(f"{type(error).__name__}: {error}", MAX_ERROR)
        return _NotRead(reason, retry=error.transient, answered=not isinstance(error, RateLimited))

    def list_referrers(self, subject: str):
        self._asked()
        try:
            answer = self.client.list_referrers(self.repository.name, subject)
        except RegistryError as error:
            raise self._failed(error) from None
        return None if answer is None else answer.descriptors

    def manifest(self, digest: str) -> Manifest:
        self._asked()
        try:
            return self.client.get_manifest(self.repository.name, digest)
        except RegistryError as error:
            raise self._failed(error) from None

    def blob(self, layer: Descriptor, limit: int, build_digest: str) -> bytes:
        if layer.size > limit:
            raise _NotRead(f"the document is {layer.size} bytes; at most {limit} are read", retry=False)
        with self.lock:
            count = self.documents[build_digest] = self.documents.get(build_digest, 0) + 1
        if count > MAX_DOCUMENTS:
            raise _NotRead(f"more than {MAX_DOCUMENTS} documents for one build; the rest are not read", False)
        self._asked()
        try:
            return self.client.get_blob(self.repository.name, layer.digest, max_bytes=limit)
        except RegistryError as error:
            raise self._failed(error) from None

    # jobs

    def referrer_job(self, target, subject, source, descriptor: Descriptor, manifest=None) -> Job:
        """Read one referrer manifest (GET unless given), then its layers as jobs of their own."""

        def job():
            base = Found(
                subject=subject, source=source, kind=_kind_of(descriptor.artifact_type),
                manifest_digest=descriptor.digest, media_type=descriptor.artifact_type,
            )  # fmt: skip
            read = manifest
            if read is None:
                if descriptor.media_type not in mediatypes.IMAGES:
                    return _failure(
                        target, base, f"a {clipped(descriptor.media_type or 'manifest', 80)} is not read"
                    )
                try:
                    read = self.manifest(descriptor.digest)
                except _NotRead as error:
                    return _failure(target, base, str(error), error.retry)
            if read.is_index or read.legacy:
                return _failure(target, base, "a referrer that is an index is not read")
            return [], self.artifact_jobs(target, subject, source, read, base.kind)

        return job

    def artifact_jobs(
        self, target, subject, source, manifest: Manifest, kind=Kind.ATTESTATION, stored=frozenset()
    ) -> list[Job]:
        """A job per layer of an artifact manifest that holds a document tagledger reads, but for
        those `stored` ((blob digest, place) already read from an earlier manifest of the tag: cosign
        appends a signature as a layer). Each layer is read, even one whose blob another layer
        has: cosign signs one payload once per signer, with the signature in the annotations."""
        artifact_type = manifest.artifact_type or (manifest.config.media_type if manifest.config else "")
        jobs, readable = [], False
        for position, layer in enumerate(manifest.layers[:MAX_LAYERS]):
            if _reader_of(layer.media_type) is None:
                continue
            readable = True
            if (layer.digest, position) in stored:
                continue
            base = Found(
                subject=subject, source=source, kind=kind, manifest_digest=manifest.digest,
                blob_digest=layer.digest, position=position, media_type=layer.media_type,
                predicate_type=supply.predicate_type(layer) or _annotated_predicate(layer),
            )  # fmt: skip
            jobs.append(self.layer_job(target, base, layer, target[0][0].digest))
        if not readable:
            base = Found(subject, source, kind, manifest.digest, media_type=artifact_type)
            types = ", ".join(sorted({clipped(layer.media_type, 60) for layer in manifest.layers[:5]}))
            reason = f"no layer of a type tagledger reads (layers: {types or 'none'})"
            return [lambda: _failure(target, base, reason)]
        return jobs

    def layer_job(self, target: list[Target], base: Found, layer: Descriptor, build_digest: str) -> Job:
        def job():
            how = _reader_of(layer.media_type) or "document"
            limit = signatures.MAX_PAYLOAD_BYTES if how == "simple-signing" else MAX_DOCUMENT_BYTES
            try:
                body = self.blob(layer, limit, build_digest)
            except _NotRead as error:
                return _failure(target, base, str(error), error.retry)
            return [(target, _read(base, how, body, layer))], []

        return job


def _reader_of(media_type: str) -> str | None:
    """How a layer of this media type is read, or None when it holds no document tagledger reads."""
    if media_type in signatures.SIGNATURE_MEDIA_TYPES:
        return "simple-signing"
    if media_type in signatures.BUNDLE_MEDIA_TYPES:
        return "bundle"
    if media_type.endswith("json"):  # in-toto, DSSE, SPDX, CycloneDX, SARIF, …: the body says which
        return "document"
    return None


def _read(base: Found, how: str, body: bytes, layer: Descriptor) -> Found:
    """What one blob says, as the Found it fills in; never raises."""
    try:
        if how == "simple-signing":
            signature = signatures.read_simple_signing(body, layer.annotations, base.subject)
            return replace(base, kind=Kind.SIGNATURE, details=signature.as_details())
        if how == "bundle" and (statement := _bundle_statement(body)) is None:
            signature = signatures.read_bundle(body, base.subject)
            return replace(base, kind=Kind.SIGNATURE, details=signature.as_details())
        contents = (
            statement if how == "bundle" else read_document(body, layer.media_type, base.predicate_type)
        )
        details = contents.details
        # Who signed an attestation (a cosign `.att` layer, with the certificate in its annotations,
        # or an attestation bundle): kept beside what it says, as `signed_by` (a signature's details).
        if how == "bundle":
            details = {**details, "signed_by": signatures.read_bundle(body, base.subject).as_details()}
        elif signatures.CERTIFICATE_ANNOTATION in layer.annotations:
            signed = signatures.read_signed_envelope(body, layer.annotations, base.subject)
            details = {**details, "signed_by": signed.as_details()}
    except UnreadableDocument as error:
        return _error(base, str(error))
    except Exception as error:  # a reader's bug: this document alone, with its traceback logged
        log.exception("%s: reading %s failed", base.manifest_digest, layer.digest)
        return _error(base, f"internal error: {type(error).__name__}")
    return replace(
        base, kind=contents.kind, predicate_type=contents.predicate_type or base.predicate_type,
        details=details, packages=contents.packages if contents.kind == Kind.SBOM else None,
    )  # fmt: skip


def _bundle_statement(body: bytes):
    """The statement of a Sigstore bundle's DSSE envelope when it is an attestation (any predicate
    but cosign's signature); None for a signature, or when it does not read (read_bundle says why)."""
    try:
        envelope = json_object(body, "the bundle").get("dsseEnvelope")
        if not isinstance(envelope, dict):
            return None
        contents = read_document(json.dumps(envelope).encode(), DSSE)
    except (BadResponse, UnreadableDocument):
        return None
    return None if contents.predicate_type == COSIGN_SIGN else contents


def _annotated_predicate(layer: Descriptor) -> str:
    """The `predicateType` annotation cosign puts on its `.att` layers, read as BuildKit's is."""
    return supply.predicate_type(
        replace(layer, annotations={supply.PREDICATE_TYPE: layer.annotations.get("predicateType", "")})
    )


def _kind_of(artifact_type: str) -> str:
    """The kind an artifact type promises, for a referrer that could not be read."""
    if (
        artifact_type in signatures.BUNDLE_MEDIA_TYPES
        or "signature" in artifact_type
        or ".sig" in artifact_type
    ):
        return Kind.SIGNATURE
    if "spdx" in artifact_type or "cyclonedx" in artifact_type:
        return Kind.SBOM
    return Kind.ATTESTATION


def _failure(target: list[Target], base: Found, reason: str, retry: bool = False):
    """A job's result for a document that was not read: its Found says why, and no more jobs."""
    return [(target, _error(base, reason, retry))], []


def _error(base: Found, reason: str, retry: bool = False) -> Found:
    return replace(base, error=clipped(reason, MAX_ERROR) or "not read", retry=retry, details={})


def _unique(descriptors: Iterable[Descriptor]) -> list[Descriptor]:
    seen, unique = set(), []
    for descriptor in descriptors:
        if descriptor.digest not in seen:
            seen.add(descriptor.digest)
            unique.append(descriptor)
    return unique


def _platforms(builds: list[Build]) -> dict[tuple[int, str], Platform]:
    """{(build id, digest): platform} of `builds`, in one query."""
    if not builds:
        return {}
    return {
        (platform.build_id, platform.digest): platform
        for platform in Platform.objects.filter(build__in=builds).order_by("pk")
    }


# --- storing ------------------------------------------------------------------------------------------


def store(found: list[tuple[list[Target], Found]], *, at: datetime) -> int:
    """Write what was read: an Attachment per document and build it describes, its packages as a
    PackageSet (history.packages). A referrer not read for now is left to the next re-check.
    Returns the number of rows written; a row the database refuses is lost alone (logged)."""
    rows, sets = [], {}
    # In an order of their own, not the order the reading's threads happened to finish in.
    for targets, item in sorted(found, key=lambda pair: (pair[1].manifest_digest, pair[1].position)):
        if item.retry and item.source == Source.REFERRERS:
            continue
        packages = sets.get(item.packages) if item.packages is not None and not item.error else None
        if packages is None and item.packages is not None and not item.error:
            # Platforms (and rebuilds) share their SBOM's packages: one set, made once per poll.
            packages = sets[item.packages] = package_set(item.packages)
        for build, platform in targets:
            row = Attachment(
                build=build, platform=platform, subject=item.subject, source=item.source, kind=item.kind,
                manifest_digest=item.manifest_digest, blob_digest=item.blob_digest, position=item.position,
                media_type=item.media_type[:255], predicate_type=item.predicate_type[:256],
                details=item.details, packages=packages,
                package_count=packages.size if packages is not None else None, error=item.error, found_at=at,
            )  # fmt: skip
            rows.append(row)
    if not rows:
        return 0
    try:
        with transaction.atomic():
            return len(Attachment.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500))
    except DatabaseError:
        stored = 0
        for row in rows:
            try:
                with transaction.atomic():
                    Attachment.objects.bulk_create([row], ignore_conflicts=True)
                stored += 1
            except DatabaseError:
                log.exception("%s: the database refused this attachment", row.manifest_digest)
        return stored
