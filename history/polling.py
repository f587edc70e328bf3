"""The one place that turns a registry observation into rows: poll one repository, record changes."""

import itertools
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from catalog.models import Repository, Tag, Version
from catalog.oci import mediatypes
from catalog.oci.client import RegistryClient
from catalog.oci.errors import RateLimited, RegistryError, TagNotFound
from catalog.oci.manifest import MAX_SIZE, Descriptor, ImageConfig, Manifest, ManifestHead, parse_time
from catalog.patterns import PatternError
from catalog.tags import TagInfo, classify, default_line_depth, version_of
from catalog.text import clipped

from . import attachments, slots, supply
from .heartbeat import Heartbeat
from .models import Attachment, Attestation, Build, Platform, PollRun, TagState
from .wording import plural

log = logging.getLogger(__name__)

VERSION_LABEL = "org.opencontainers.image.version"
UNKNOWN_PLATFORM = "unknown/unknown"  # what BuildKit gives its attestation manifests
IMAGE_CONFIGS = frozenset({mediatypes.OCI_CONFIG, mediatypes.DOCKER_CONFIG})
# New builds are written this many at a time, in one transaction: one commit per build made a
# first poll's writes wait on the disk (and on the fetching threads) hundreds of times.
STORE_BATCH = 100
# The order in which the poll's threads take their work: a new build's GETs (a chain of up to a
# few requests, one after another) before the HEADs still waiting, so that no chain starts late
# and holds one slot busy while the others idle at the end of the poll.
FETCH, HEAD = 0, 1
# Real indexes list a handful of platforms (Windows images a few dozen), each a GET or two; a
# hostile one may list tens of thousands in its 8 MiB, and spend the poll's deadline on one tag.
MAX_INDEX_IMAGES = 128
# How long a poll waits for a request slot held by another poll before it reports the registry busy.
SLOT_WAIT = 10.0
SLOT_GRACE = 0.5
# How long a poll holds its repository: renewed by its heartbeat while it runs, so this only says
# how soon a poll whose worker died may be claimed again.
POLL_LEASE = timedelta(minutes=5)
# A poll still `running` this long after its deadline died with its worker: the longest request
# (its retries included) and the writing of its results fit in it many times over.
STALE_AFTER_DEADLINE = timedelta(minutes=30)

Progress = Callable[[int, int], None]


class RegistryBusy(Exception):
    """Every request slot of the registry is held by other polls, or it is paused: try later."""

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class Fetched:
    """A new build read from the registry: its manifest, each wanted platform's manifest and config,
    and the attestation manifests of those platforms, each with the digest of the image it describes."""

    manifest: Manifest
    platforms: list[tuple[str, Manifest, ImageConfig | None]] = field(default_factory=list)
    attestations: list[tuple[str, Manifest]] = field(default_factory=list)


@dataclass
class Observation:
    listed: set[str] = field(default_factory=set)  # the complete tag list (of wanted tags)
    asked: list[str] = field(default_factory=list)  # HEADs sent, in order: listed, then vanished
    heads: dict[str, ManifestHead] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)  # verified unknown by a full-Accept HEAD
    failed: dict[str, str] = field(default_factory=dict)  # tag -> why nothing was recorded
    # tag -> (when its request went out, when the answer arrived): what it is recorded at, not the
    # poll's start, so an overlapping poll's older answer is told apart (TagStateQuerySet.observe).
    seen_at: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)


def poll(
    repository: Repository,
    *,
    progress: Progress | None = None,
    client: RegistryClient | None = None,
    supply_chain: bool = False,
):
    """Poll `repository` once and record every change; returns the finished PollRun.

    `supply_chain`: also read the signatures, attestations and SBOMs of the builds tags point to now
    that have none recorded (builds stored before tagledger read them): each is fetched again as a
    new build is, a GET of its manifest and of its attestation manifests, then read as step 5 reads
    a new build's. Meant for once after an upgrade (`manage.py poll --supply-chain`): a build with
    no supply chain at all is fetched again each time it is asked for.

    Raises RegistryBusy, before any request, when the registry is paused, or when it has no free
    slot and no poll running here frees one within SLOT_WAIT seconds (SLOT_GRACE when none runs).
    """
    sweep_stale_polls(PollRun.objects.filter(repository=repository))
    with _slots(repository.registry) as held, Heartbeat(repository, held, lease=POLL_LEASE):
        return _Poll(repository, held.count, progress, supply_chain=supply_chain).run(client)


def sweep_stale_polls(polls) -> int:
    """End as `failed` the `polls` left running by a worker that died (PollRunQuerySet.sweep_stale)."""
    deadline = timedelta(seconds=settings.TAGLEDGER_POLL_DEADLINE) + STALE_AFTER_DEADLINE
    return polls.sweep_stale(now=timezone.now(), lease=POLL_LEASE, deadline=deadline)


def _slots(registry) -> slots.Slots:
    """Some of the registry's request slots, waiting for one while a poll running here holds them.

    A poll gives its slots back within seconds, while a bounced poll waits for a later dispatch
    (beat runs it every 15 s): with 50 repositories on one registry, bouncing alone made the
    polls take minutes (BENCHMARKS.md, Polling). Slots held otherwise are waited for SLOT_GRACE.
    """
    started = time.monotonic()
    while True:
        paused = slots.paused_until(registry) - time.time()
        if paused > 0:
            raise RegistryBusy(f"{registry} is paused by its rate limit", paused)
        held = slots.Slots(registry, settings.TAGLEDGER_POLL_THREADS)
        if held.count:
            return held
        waited = time.monotonic() - started
        # A poll that has just taken the slots writes its PollRun a moment later: look after a while.
        if waited > SLOT_WAIT or (waited > SLOT_GRACE and not _poll_running(registry)):
            raise RegistryBusy(f"all request slots of {registry} are in use", 5)
        time.sleep(random.uniform(0.05, 0.2))  # noqa: S311 - jitter, so waiting polls do not collide


def _poll_running(registry) -> bool:
    """Whether a poll of `registry` started here is running (one that died long ago does not count)."""
    since = timezone.now() - timedelta(seconds=settings.TAGLEDGER_POLL_DEADLINE)
    running = PollRun.objects.filter(repository__registry=registry, status=PollRun.Status.RUNNING)
    return running.filter(started_at__gte=since).exists()


class _Poll:
    def __init__(
        self, repository: Repository, threads: int, progress: Progress | None, *, supply_chain: bool = False
    ):
        self.repository = repository
        self.supply_chain = supply_chain  # also read the supply chain of builds stored before
        self.client: RegistryClient | None = None
        self.threads = threads
        self.progress = progress
        self.at = timezone.now()
        self.deadline = time.monotonic() + settings.TAGLEDGER_POLL_DEADLINE
        self.run_row = PollRun.objects.create(repository=repository, started_at=self.at)
        self.failed: dict[str, str] = {}
        self.first_seen: dict[str, datetime] = {}  # digest -> when a new build's first answer arrived
        self.wanted: dict[str, bool | None] = {}  # tag -> whether the patterns take it (_wanted)
        self.rate_limited = False  # a 429 in this poll: ask nothing more
        self.new: list[attachments.New] = []  # the builds this poll stored, for their supply chain

    def run(self, client: RegistryClient | None) -> PollRun:
        try:
            # Reading credentials may fail too (a broken config.json): that is this poll's failure.
            self.client = client or self.repository.registry.client()
            names = self._list()  # 1. the complete tag list
            with _Workers(self.threads) as workers:  # 2 and 3 overlap: no slot waits for a phase's end
                observation = self._heads(names, workers)  # 2. HEAD every tag
                builds = self._builds(observation, workers)  # 3. GET each new build a HEAD names
            changes = self._record(names, observation, builds)  # 4. record what changed
            if self.supply_chain:
                self._fetch_again(builds)
            self._supply_chain(observation)  # 5. signatures, attestations, SBOMs of new builds
        except RegistryError as error:
            # Named by its kind, as a failed tag's reason is (`_failure`): /metrics counts errors by it.
            return self._finish(
                PollRun.Status.FAILED, error=f"{type(error).__name__}: {error}", error_object=error
            )
        except Exception as error:
            self._finish(PollRun.Status.FAILED, error=f"internal error: {type(error).__name__}: {error}")
            raise
        finally:
            if client is None and self.client is not None:
                self.client.close()
        if not self.failed:
            return self._finish(PollRun.Status.OK, changes=changes)
        checked = observation.heads.keys() - self.failed.keys() or observation.missing
        return self._finish(PollRun.Status.PARTIAL if checked else PollRun.Status.FAILED, changes=changes)

    # --- 1. the complete tag list -------------------------------------------------------------

    def _list(self) -> list[str]:
        listed = self.client.list_tags(self.repository.name)
        names = [name for name in listed.tags if self._wanted(name)]
        self.run_row.tags_seen = len(names)
        return names

    def _wanted(self, name: str) -> bool | None:
        """Whether the repository's patterns take this tag; None (and the tag failed) when a
        pattern ran out of time on it: no answer, so neither checked nor untracked.

        Asked of a tag by the listing, the HEADs and the recording alike: decided once per poll,
        since a pattern that backtracks costs its time limit every time it is asked."""
        if name not in self.wanted:
            try:
                self.wanted[name] = self.repository.wants_tag(name)
            except PatternError as error:
                self.failed[name] = str(error)
                self.wanted[name] = None
        return self.wanted[name]

    # --- 2. HEAD every tag (and every vanished tag, to verify it is gone) -----------------------

    def _heads(self, names: list[str], workers: "_Workers") -> Observation:
        """Hand the HEADs to the poll's threads, in tag order; their answers fill the Observation
        as they arrive (_builds reads them)."""
        listed = set(names)
        for name in names:  # first, so the threads start while the vanished ones are looked up
            workers.submit(HEAD, name, self._head)
        present = TagState.objects.filter(tag__repository=self.repository, present=True)
        vanished = [
            name
            for name in present.values_list("tag__name", flat=True)
            if name not in listed and self._wanted(name)
        ]
        for name in vanished:
            workers.submit(HEAD, name, self._head)
        return Observation(listed=listed, asked=names + vanished)

    def _head(self, name: str) -> tuple[ManifestHead | str | None, datetime, datetime]:
        """A HEAD result (None when the registry verifies the tag is gone, or why it failed), when
        it was asked and when it arrived."""
        asked_at = timezone.now()
        return self._answer(name), asked_at, timezone.now()

    def _answer(self, name: str) -> ManifestHead | str | None:
        if skipped := self._skipped():
            return skipped
        try:
            return self.client.head_manifest(self.repository.name, name)
        except TagNotFound:
            return None
        except Exception as error:
            return self._failure(error, f"{self.repository}:{name}")

    def _observe(self, observation: Observation, name: str, answer) -> str | None:
        """Note one HEAD's answer; the digest it names, if any."""
        outcome, *times = answer
        observation.seen_at[name] = tuple(times)
        digest = None
        if isinstance(outcome, ManifestHead):
            observation.heads[name] = outcome
            digest = outcome.digest
        elif outcome is None and name in observation.listed:
            # The complete list names it, yet its manifest is unknown: the two answers
            # contradict each other, so neither is recorded.
            observation.failed[name] = "listed, but its manifest answered 404"
        elif outcome is None:
            observation.missing.add(name)
        else:
            observation.failed[name] = outcome
        if self.progress:
            self.progress(len(observation.seen_at), len(observation.asked))
        return digest

    # --- 3. GET only what is new, as soon as a HEAD names it ----------------------------------

    def _builds(self, observation: Observation, workers: "_Workers") -> dict[str, Build]:
        """The build of every digest the HEADs name: known ones from the database, new ones read
        by the same threads while the other HEADs are still out, and stored a batch at a time.

        A phase that waits for the last answer of the one before leaves slots idle for a round
        trip or more each time it drains (bench/latency.py measures what a network makes of it)."""
        tags_of: dict[str, list[str]] = {}  # digest -> the tags pointing at it
        builds: dict[str, Build] = {}
        fetched: list[Fetched] = []
        failed: dict[str, str] = {}  # digest -> why it was not stored
        for answers in workers.answers():
            named = []
            for kind, key, answer in answers:
                if kind == FETCH:
                    if isinstance(answer, Fetched):
                        fetched.append(answer)
                    else:
                        failed[key] = answer
                elif digest := self._observe(observation, key, answer):
                    if digest not in tags_of:
                        named.append(digest)
                    tags_of.setdefault(digest, []).append(key)
            if named:  # one query for the digests first named by this handful of answers
                builds.update(
                    (build.digest, build)
                    for build in Build.objects.filter(repository=self.repository, digest__in=named)
                )
                for digest in named:
                    if digest not in builds:
                        workers.submit(FETCH, digest, self._fetch)
            if len(fetched) >= STORE_BATCH:
                builds.update(self._store_builds(fetched, observation, tags_of))
                fetched = []
        builds.update(self._store_builds(fetched, observation, tags_of))
        # Back in the order asked, as the answers arrived in any: what is recorded from them (the
        # order of one poll's events, say) must not depend on which thread was quicker.
        observation.heads = {
            name: observation.heads[name] for name in observation.asked if name in observation.heads
        }
        self.failed.update(observation.failed)
        for digest, names in tags_of.items():
            if digest not in builds:
                reason = failed.get(digest, "its build could not be stored (see the log)")
                for name in names:
                    self.failed.setdefault(name, reason)
        try:
            self._assign_versions(observation, builds)
        except DatabaseError:  # versions are derived and re-derived by the next poll: no tag waits on them
            log.exception("%s: versions not assigned in this poll", self.repository)
        return builds

    def _fetch(self, digest: str) -> Fetched | str:
        if skipped := self._skipped():
            return skipped
        try:
            manifest = self.client.get_manifest(self.repository.name, digest)
            fetched = Fetched(manifest)
            if manifest.legacy:
                return fetched
            if not manifest.is_index:
                if (config := self._config(manifest)) is not None:
                    fetched.platforms.append(("", manifest, config))
                return fetched  # else an artifact (signature, SBOM): a build, but no platform image
            images = [child for child in manifest.manifests if not supply.is_attestation(child)]
            wanted = self._wanted_images(images)
            if len(wanted) > MAX_INDEX_IMAGES:
                return (
                    f"BadResponse: the index lists {len(wanted)} images; at most {MAX_INDEX_IMAGES} are read"
                )
            for platform, child in wanted:
                image = self.client.get_manifest(self.repository.name, child.digest)
                fetched.platforms.append((platform, image, self._config(image)))
            fetched.attestations = self._attestations(manifest, images)
            return fetched
        except Exception as error:
            return self._failure(error, f"{self.repository}@{digest}")

    def _failure(self, error: Exception, what: str) -> str:
        """Why one tag or build failed, in words for the PollRun. Anything a registry's answer
        raises fails only what it describes: a RegistryError by design, anything else because
        no parser can foresee every value (that one is logged with its traceback, as a bug)."""
        if isinstance(error, RegistryError):
            self._note_rate_limit(error)
            return f"{type(error).__name__}: {error}"
        log.exception("%s: unexpected error, recorded as this item's failure", what)
        return f"internal error: {type(error).__name__}: {error}"

    def _wanted_images(self, images: list) -> list[tuple[str, Descriptor]]:
        """(platform, entry) of each wanted platform image of an index, each digest once: an entry
        listed twice is one image (and one Platform row of the build)."""
        wanted, seen = [], set()
        for child in images:
            platform = str(child.platform) if child.platform else ""
            if child.media_type not in mediatypes.IMAGES or not self.repository.wants_platform(platform):
                continue  # unwanted platforms, and entries that are no image
            if platform == UNKNOWN_PLATFORM or child.digest in seen:
                continue  # no runtime runs unknown/unknown: an attestation whose annotations are broken
            seen.add(child.digest)
            wanted.append((platform, child))
        return wanted

    def _attestations(self, index: Manifest, images: list) -> list[tuple[str, Manifest]]:
        """The attestation manifests of the wanted platforms, as (subject digest, manifest).

        One GET each, for the statement layers; never their config, which is no image config.
        Only for wanted platforms: an attestation describes one platform image, and one whose
        image is not stored would describe nothing here, at a GET (a pull, on Docker Hub) each.
        One that names no platform of the index is wanted only when every platform is.

        One that cannot be read is left out and logged, and the build is stored without it: the
        platform images are the record, and they are all here. A 429 is the exception: it ends
        the poll's requests, so the build is left for the next poll to fetch whole.
        """
        platforms = {child.digest: str(child.platform) if child.platform else "" for child in images}
        found: dict[str, tuple[str, Manifest]] = {}
        for child in index.manifests:
            subject = supply.subject_of(child)
            if (
                not supply.is_attestation(child)
                or child.digest in found
                or child.media_type not in mediatypes.IMAGES
                or not self.repository.wants_platform(platforms.get(subject, ""))
            ):
                continue
            if len(found) == MAX_INDEX_IMAGES:
                log.warning(
                    "%s@%s: more than %d attestations; the rest left out",
                    self.repository,
                    index.digest,
                    MAX_INDEX_IMAGES,
                )
                break
            try:
                found[child.digest] = subject, self.client.get_manifest(self.repository.name, child.digest)
            except RateLimited:
                raise
            except Exception as error:  # any answer that cannot be read, as for a platform
                log.warning(
                    "%s@%s stored without its attestation manifest %s: %s: %s",
                    self.repository, index.digest, child.digest, type(error).__name__, error,
                )  # fmt: skip
        return list(found.values())

    def _config(self, image: Manifest) -> ImageConfig | None:
        if image.config is None or image.config.media_type not in IMAGE_CONFIGS:
            return None  # an artifact (signature, SBOM): its config is not an image config
        return self.client.get_config(self.repository.name, image.config.digest)

    def _store_builds(
        self, batch: list[Fetched], observation: Observation, tags_of: dict[str, list[str]]
    ) -> dict[str, Build]:
        """Each build with its platforms and attestations, the whole batch in one transaction
        (digest -> Build)."""
        if not batch:
            return {}
        for fetched in batch:
            # A new build is first seen when the first answer naming it arrived, as its tags are.
            digest = fetched.manifest.digest
            self.first_seen[digest] = min(observation.seen_at[name][1] for name in tags_of[digest])
        try:
            with transaction.atomic():
                builds = Build.objects.bulk_create(self._build(fetched) for fetched in batch)
                _store_contents(list(zip(builds, batch, strict=True)))
        except DatabaseError:
            # Another poll stored one of them first, or one holds a value the database refuses:
            # one at a time, then, so only that one is lost.
            stored = {fetched.manifest.digest: self._store_build(fetched) for fetched in batch}
            builds = [build for build in stored.values() if build is not None]
        fetched_of = {fetched.manifest.digest: fetched for fetched in batch}
        self.new += [attachments.New.of(build, fetched_of[build.digest]) for build in builds]
        return {build.digest: build for build in builds}

    def _store_build(self, fetched: Fetched) -> Build | None:
        try:
            with transaction.atomic():
                build = self._build(fetched)
                build.save(force_insert=True)
                _store_contents([(build, fetched)])
        except IntegrityError:  # another poll stored it first: a digest's content never changes
            build = Build.objects.filter(repository=self.repository, digest=fetched.manifest.digest).first()
            if build is None:  # no: a constraint of its contents refused it
                log.exception("%s: the database refused this build", fetched.manifest.digest)
        except DatabaseError:
            log.exception("%s: the database refused this build", fetched.manifest.digest)
            return None
        return build

    def _build(self, fetched: Fetched) -> Build:
        manifest = fetched.manifest
        configs = [config for _, _, config in fetched.platforms if config]
        return Build(
            repository=self.repository, digest=manifest.digest, media_type=manifest.media_type[:128],
            size=min(manifest.size, MAX_SIZE), legacy=manifest.legacy, annotations=manifest.annotations,
            created=min(filter(None, (parse_time(c.created) for c in configs)), default=None),
            first_seen_at=self.first_seen.get(manifest.digest, self.at),
        )  # fmt: skip

    # --- versions: the most specific version among its tags, else the version label ------------

    def _assign_versions(self, observation: Observation, builds: dict[str, Build]) -> None:
        evidence: dict[str, list[TagInfo]] = {}
        for name, head in observation.heads.items():
            evidence.setdefault(head.digest, []).append(classify(name))
        depth = self.repository.line_depth or default_line_depth(
            info.version for infos in evidence.values() for info in infos
        )
        built_at: dict[Build, datetime] = {}
        sources: dict[Build, tuple[str, str]] = {}
        unnamed: dict[Build, list[TagInfo]] = {}
        for digest, infos in evidence.items():
            build = builds.get(digest)
            if build is None:
                continue
            stamp = min((info.built_at for info in infos if info.built_at), default=None)
            if stamp and build.built_at is None:
                built_at[build] = stamp
            if build.version_id is None:
                if named := version_of(infos):
                    sources[build] = named.version, named.variant
                else:
                    unnamed[build] = infos
        sources |= _labelled(unnamed)
        if not built_at and not sources:
            return  # the usual re-poll: every build already has both
        # One transaction and a few queries for all of them: a first poll finds hundreds of builds.
        with transaction.atomic():
            versions = Version.objects.ensure(self.repository, set(sources.values()), depth=depth)
            changed = {}
            for build, value in built_at.items():
                build.built_at = changed[build] = value
            for build, source in sources.items():
                build.version = changed[build] = versions[source]
            fields = ["built_at"] * bool(built_at) + ["version"] * bool(sources)
            Build.objects.bulk_update(changed, fields, batch_size=500)

    # --- 4. record transitions, one transaction per changed tag --------------------------------

    def _record(self, names: list[str], observation: Observation, builds: dict[str, Build]) -> int:
        states = {
            state.tag.name: state
            for state in TagState.objects.filter(tag__repository=self.repository).select_related("tag")
        }
        first_seen, unchanged, changes = [], [], 0
        for name, head in observation.heads.items():
            if name in self.failed or head.digest not in builds:
                continue
            build, state = builds[head.digest], states.get(name)
            asked_at, at = observation.seen_at[name]
            if state is None:
                first_seen.append((name, build, asked_at, at))
            elif state.present and state.build_id == build.pk:
                unchanged.append((asked_at, state.tag_id))
            elif (immutable := self._immutable(state.tag)) is not None and TagState.objects.observe(
                state.tag, build, at=at, asked_at=asked_at, poll=self.run_row, immutable=immutable
            ):
                changes += 1
        tags = Tag.objects.ensure(self.repository, {name for name, *_ in first_seen})
        changes += TagState.objects.record_first_sightings(
            [(tags[name], build, asked_at, at) for name, build, asked_at, at in first_seen],
            poll=self.run_row,
            imported=not states,  # no tag history yet: this is the repository's import
        )
        listed, untracked = set(names), []
        for name, state in states.items():
            if name in self.failed:
                continue
            if name in observation.missing:
                asked_at, at = observation.seen_at[name]
                gone = state.present and TagState.objects.observe(
                    state.tag, None, at=at, asked_at=asked_at, poll=self.run_row, immutable=False
                )
                changes += bool(gone)
            elif name not in listed and (wanted := self._wanted(name)) is not None:
                if not wanted and state.present:
                    untracked.append(state.tag)  # the patterns changed: no longer checked
                elif wanted and not state.present:
                    unchanged.append((self.at, state.tag_id))  # still gone: the complete list confirms it
        changes += TagState.objects.untrack(untracked, at=timezone.now(), poll=self.run_row)
        _confirm(unchanged)
        return changes

    def _immutable(self, tag: Tag) -> bool | None:
        """Whether the tag must never move; None (and the tag failed) when the pattern ran out of time."""
        try:
            return self.repository.is_immutable(classify(tag.name))
        except PatternError as error:
            self.failed[tag.name] = str(error)
            return None

    # --- 5. the supply chain: after the record, so that its requests never delay it ----------

    def _supply_chain(self, observation: Observation) -> None:
        """Read and store what history.attachments finds about the builds (its requests count in
        the PollRun: blobs in blob_gets, manifests in gets, referrers pages in requests only).
        Nothing it meets fails the poll: a failure of its own is logged, as a bug."""
        tags = {name: head.digest for name, head in observation.heads.items()}
        budget = attachments.Budget(skipped=self._skipped, note=self._note_rate_limit)
        try:
            attachments.discover(self.client, self.repository, self.new, tags, budget)
        except Exception:
            log.exception("%s: reading the supply chain failed; the poll's record stands", self.repository)
        self.new = []

    def _fetch_again(self, builds: dict[str, Build]) -> None:
        """The builds tags point to now with no supply chain recorded, fetched again for step 5 as
        if new (poll's `supply_chain`). One at a time: a one-off, bounded by the poll's deadline."""
        stored = {item.build.pk for item in self.new}
        known = [build for build in builds.values() if build.pk not in stored]
        described = set(Attachment.objects.filter(build__in=known).values_list("build", flat=True).distinct())
        for build in known:
            if build.pk in described or build.legacy:
                continue
            fetched = self._fetch(build.digest)
            if isinstance(fetched, Fetched):
                self.new.append(attachments.New.of(build, fetched))
            elif fetched.startswith("skipped"):
                break  # the deadline or a 429: the rest another time

    # --- helpers ----------------------------------------------------------------------------

    def _skipped(self) -> str | None:
        """Why no more requests should be sent in this poll, if so."""
        if time.monotonic() > self.deadline:
            return f"skipped: the poll reached its {settings.TAGLEDGER_POLL_DEADLINE} s deadline"
        if self.rate_limited:
            return "skipped: the registry answered 429"
        if self._near_rate_limit():
            return "skipped: the registry's rate limit is nearly used up"
        return None

    def _near_rate_limit(self) -> bool:
        rate_limit = self.client.rate_limit if self.client else None
        remaining = rate_limit.remaining if rate_limit else None
        return remaining is not None and remaining <= settings.TAGLEDGER_RATE_LIMIT_FLOOR

    def _note_rate_limit(self, error: RegistryError) -> None:
        if isinstance(error, RateLimited):
            self.rate_limited = True
            slots.pause(self.repository.registry, error.retry_after or 60)

    def _finish(self, status, *, changes=0, error="", error_object=None) -> PollRun:
        run = self.run_row
        if self.failed and not error:
            error = _failures(self.failed)
        if error_object is not None:
            self._note_rate_limit(error_object)
        run.status, run.changes, run.error = status, changes, error[:2000]
        if self.client is not None:
            stats, rate_limit = self.client.stats, self.client.rate_limit
            run.heads, run.gets = stats["manifest_heads"], stats["manifest_gets"]
            run.blob_gets, run.requests = stats["blob_gets"], stats["requests"]
            run.rate_limit_remaining = rate_limit.remaining if rate_limit else None
            if self._near_rate_limit():
                slots.pause(self.repository.registry, rate_limit.window or 3600)
        run.finished_at = timezone.now()
        run.save()
        return run


class _Workers:
    """The threads of one poll, one per request slot it holds, taking work by priority (FETCH
    before HEAD, then in the order given); `answers()` hands back what they found as it arrives.

    One queue for every kind of request, so that a slot never idles while any work waits: the
    chunks of HEADs, then of GETs, that went before left slots idle at each phase's end."""

    _STOP = -1  # before any work: a closing poll asks nothing more

    def __init__(self, threads: int):
        self._jobs: queue.PriorityQueue = queue.PriorityQueue()
        self._answers: queue.SimpleQueue = queue.SimpleQueue()
        self._order = itertools.count()
        self._pending = 0
        self._threads = [
            threading.Thread(target=self._work, name=f"poll worker {number}", daemon=True)
            for number in range(max(1, threads))
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, kind: int, key: str, work: Callable[[str], object]) -> None:
        self._pending += 1
        self._jobs.put((kind, next(self._order), key, work))

    def answers(self) -> Iterator[list[tuple[int, str, object]]]:
        """(kind, key, what its work returned) of every job, a handful at a time: whatever has
        arrived by the time the last handful was dealt with. Jobs may be submitted meanwhile."""
        while self._pending:
            batch = [self._answers.get()]
            while True:
                try:
                    batch.append(self._answers.get_nowait())
                except queue.Empty:
                    break
            self._pending -= len(batch)
            for _, _, answer in batch:
                if isinstance(answer, _Raised):
                    raise answer.error
            yield batch

    def _work(self) -> None:
        while True:
            kind, _, key, work = self._jobs.get()
            if kind == self._STOP:
                return
            try:
                answer = work(key)
            except BaseException as error:
                answer = _Raised(error)
            self._answers.put((kind, key, answer))

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        # Work not yet started is dropped; requests on their way finish (each within its deadline).
        for _ in self._threads:
            self._jobs.put((self._STOP, -1, "", None))
        for thread in self._threads:
            thread.join()


@dataclass
class _Raised:
    error: BaseException


def _failures(failed: dict[str, str]) -> str:
    """The PollRun's words for its failed tags: every reason, commonest first, each with up to
    five of its tags by name, clipped so that many reasons fit the 2000 characters a PollRun keeps."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in sorted(failed.items()):
        by_reason.setdefault(reason, []).append(name)
    summary = "; ".join(
        f"{clipped(reason)} ({plural(len(names), 'tag')}: {', '.join(names[:5])}{', …' * (len(names) > 5)})"
        for reason, names in sorted(by_reason.items(), key=lambda item: -len(item[1]))
    )
    return f"{plural(len(failed), 'tag')} not checked: {summary}"


def _confirm(unchanged: list[tuple[datetime, int]]) -> None:
    """Confirm (asked at, tag id) pairs, a thousand at a time at the earliest time among them: a
    confirmation may be early, never later than the request it stands for."""
    unchanged.sort()
    for start in range(0, len(unchanged), 1000):
        batch = unchanged[start : start + 1000]
        TagState.objects.confirm([tag_id for _, tag_id in batch], at=batch[0][0])


def _labelled(unnamed: dict[Build, list[TagInfo]]) -> dict[Build, tuple[str, str]]:
    """(version, variant) from the version annotation or label of builds no tag names.

    The labels of all their platforms come in one query: such builds (a CI repository's
    `main` and `sha-…`) are asked again on every poll until one says a version.
    """
    if not unnamed:
        return {}
    labels: dict[int, str] = {}
    # Only the labels, not whole configs; the key is read here since its dots trip SQLite's paths.
    platforms = Platform.objects.filter(build__in=list(unnamed)).order_by("pk")
    for build_id, platform_labels in platforms.values_list("build_id", "config__labels"):
        if isinstance(platform_labels, dict) and (label := platform_labels.get(VERSION_LABEL)):
            labels.setdefault(build_id, label)
    found = {}
    for build, infos in unnamed.items():
        if labelled := build.annotations.get(VERSION_LABEL) or labels.get(build.pk):
            variants = {info.variant for info in infos}
            found[build] = labelled[:128], variants.pop() if len(variants) == 1 else ""
    return found


def _store_contents(stored: list[tuple[Build, Fetched]]) -> None:
    """The platforms and attestations of builds just inserted: two inserts, whatever their number."""
    platforms = Platform.objects.bulk_create(
        Platform.from_manifest(build, name, image, config)
        for build, fetched in stored
        for name, image, config in fetched.platforms
    )
    described = {(platform.build_id, platform.digest): platform for platform in platforms}
    Attestation.objects.bulk_create(
        Attestation.from_manifest(build, subject, manifest, described.get((build.pk, subject)))
        for build, fetched in stored
        for subject, manifest in fetched.attestations
    )
