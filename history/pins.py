"""Check pinned references (`name:tag@sha256:…`) against recorded tag history: current, behind or wrong.

Input is what people have at hand: one reference per line, or lines pasted from a Dockerfile
(`FROM [--platform=…] name:tag@digest [AS stage]`), a compose file or a Kubernetes manifest
(`image: name:tag@digest`, quoted or not). Other lines of those files are skipped. Every answer
comes from stored data, in a fixed number of queries however many lines are checked.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from functools import reduce
from operator import or_
from typing import Literal
from urllib.parse import urlencode

from django.db.models import Max, Q
from django.urls import reverse

from catalog.models import Repository, Tag
from catalog.oci.reference import ImageReference, InvalidReference, parse
from catalog.patterns import PatternError

from .models import Build, HeldTag, Platform, TagEvent, TagState
from .wording import plural, short_digest

MAX_REFERENCES = 200  # per check: a large compose file has a few dozen
MAX_LINE_LENGTH = 2048  # a reference is at most 1024; FROM flags and a stage name fit in the rest
MAX_INPUT = 512 * 1024  # characters in all; refused before anything is parsed

Status = Literal["current", "behind", "not_a_build_of_tag", "unknown", "invalid", "no_digest"]
Unknown = Literal["repository", "tag", "digest"]

STATUS_LABELS = {
    "current": "current",
    "behind": "behind",
    "not_a_build_of_tag": "not a build of this tag",
    "unknown": "unknown",
    "invalid": "invalid",
    "no_digest": "no digest",
}

# Dockerfile instructions other than FROM: their lines name no base image.
_INSTRUCTIONS = frozenset(
    {
        "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL",
        "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
    }
)  # fmt: skip
# `key: value` or `- key: value` in YAML; `python:3.12` is no key (nothing follows the colon's space).
_YAML_KEY_RE = re.compile(r"(?:-\s+)?(?P<key>[A-Za-z_][\w.-]*)\s*:(?:\s+(?P<value>.*))?")
_TRAILING_COMMENT_RE = re.compile(r"\s+#.*\Z", re.DOTALL)


class PinError(ValueError):
    """The whole input is refused (too many references, too large): nothing was checked."""


@dataclass(frozen=True)
class PinResult:
    """What one line says and what tagledger knows about it."""

    line: int  # 1-based, counting every input line, so it can be found in the pasted text
    text: str  # the line as given (trimmed)
    status: Status
    message: str
    reference: str | None = None  # normalised: docker.io/library/python:3.12@sha256:…
    repository: str | None = None  # registry/name
    tag: str | None = None
    digest: str | None = None  # as pinned
    build_digest: str | None = None  # the build the pinned digest is, or belongs to (a platform's)
    platform: str | None = None  # the pinned digest is this platform's image of that build
    current_digest: str | None = None  # where the tag points now
    current_reference: str | None = None  # registry/name:tag@<current digest>: what to pin
    builds_behind: int | None = None  # distinct builds the tag moved through since it left the pin
    held_by: tuple[str, ...] = ()  # tags that pointed to the pinned build (for the wrong-tag case)
    unknown: Unknown | None = None  # what tagledger does not know, when the status is `unknown`
    confirmed_at: datetime | None = None  # the last poll that saw the tag where it points now
    build_id: int | None = None
    current_build_id: int | None = None

    @property
    def label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def compare_url(self) -> str | None:
        """The compare page from the pinned build to the current one, when both are known and differ."""
        if not (self.build_digest and self.current_digest) or self.build_digest == self.current_digest:
            return None
        query = urlencode(
            {"a": f"{self.repository}@{self.build_digest}", "b": f"{self.repository}@{self.current_digest}"}
        )
        return f"{reverse('history:compare')}?{query}"

    def as_dict(self) -> dict:
        """Plain JSON types, for the API."""
        return {
            "line": self.line,
            "text": self.text,
            "status": self.status,
            "message": self.message,
            "reference": self.reference,
            "repository": self.repository,
            "tag": self.tag,
            "digest": self.digest,
            "build_digest": self.build_digest,
            "platform": self.platform,
            "current_digest": self.current_digest,
            "current_reference": self.current_reference,
            "builds_behind": self.builds_behind,
            "held_by": list(self.held_by),
            "unknown": self.unknown,
            "confirmed_at": self.confirmed_at.isoformat() if self.confirmed_at else None,
            "compare_url": self.compare_url,
        }


def check(lines: str | list[str]) -> list[PinResult]:
    """One result per reference line, in input order; raises PinError when the input is refused."""
    entries = _read(lines)
    pins = [entry for entry in entries if isinstance(entry, _Pin)]
    resolved = _Resolver(pins).results() if pins else {}
    return [resolved[entry.line] if isinstance(entry, _Pin) else entry for entry in entries]


# --- reading lines ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pin:
    line: int
    text: str
    reference: ImageReference


def _read(lines: str | list[str]) -> list["_Pin | PinResult"]:
    raw = _split(lines)
    entries: list[_Pin | PinResult] = []
    stages: set[str] = set()  # `FROM … AS build` makes `FROM build` a stage, not an image
    continued = False  # the previous line ended with `\`: this one continues an instruction
    for number, line in enumerate(raw, start=1):
        continuation, continued = continued, line.rstrip().endswith("\\")
        if continuation:
            continue
        entry = _entry(number, line, stages)
        if entry is None:
            continue
        entries.append(entry)
        if len(entries) > MAX_REFERENCES:
            raise PinError(f"too many references: more than {MAX_REFERENCES} in one check; split the list")
    return entries


def _split(lines: str | list[str]) -> list[str]:
    if isinstance(lines, str):
        lines = [lines]
    if not isinstance(lines, list | tuple) or not all(isinstance(line, str) for line in lines):
        raise PinError("give references as text, one per line")
    if sum(len(line) for line in lines) > MAX_INPUT:
        raise PinError(f"the input is too large (at most {MAX_INPUT // 1024} KiB); split the list")
    return [part for line in lines for part in (line.splitlines() or [""])]


def _entry(number: int, line: str, stages: set[str]) -> "_Pin | PinResult | None":
    text = line.strip()
    if len(line) > MAX_LINE_LENGTH:
        message = f"the line is too long ({len(line)} characters; at most {MAX_LINE_LENGTH})"
        return _invalid(number, text[:80] + "…", message)
    if not text or text.startswith("#") or text in {"---", "..."}:
        return None
    text = _TRAILING_COMMENT_RE.sub("", text)
    words = text.split()
    instruction = words[0].upper()
    if instruction == "FROM":
        return _from(number, text, words[1:], stages)
    if instruction in _INSTRUCTIONS and len(words) > 1:
        return None
    if key := _YAML_KEY_RE.fullmatch(text):
        if key["key"] != "image":
            return None  # another key of a compose or Kubernetes file
        value = _unquote(key["value"] or "")
        if not value:
            return _invalid(number, text, "`image:` names no image")
        return _reference(number, text, value)
    if text.startswith("- "):
        # a YAML list item (ports, volumes, environment…), unless it is a pinned reference
        pin = _reference(number, text, _unquote(text[2:]))
        return pin if isinstance(pin, _Pin) and pin.reference.digest else None
    return _reference(number, text, _unquote(text))


def _from(number: int, text: str, words: list[str], stages: set[str]) -> "_Pin | PinResult | None":
    words = [word for word in words if not word.startswith("--")]  # --platform=…
    if not words:
        return _invalid(number, text, "FROM names no image")
    image, rest = words[0], words[1:]
    if len(rest) >= 2 and rest[0].upper() == "AS":
        stages.add(rest[1].lower())
    elif rest:
        return _invalid(number, text, "after the image, FROM takes only `AS name`")
    if image.lower() in stages or image == "scratch":
        return None  # an earlier stage, or the empty image: nothing to pin
    return _reference(number, text, image)


def _reference(number: int, text: str, value: str) -> "_Pin | PinResult":
    if "$" in value:
        return _invalid(
            number, text, "uses a variable (${…}); tagledger cannot expand it: paste the resolved reference"
        )
    if any(character.isspace() for character in value):
        return _invalid(number, text, "a reference has no spaces: one reference per line")
    try:
        return _Pin(number, text, parse(value))
    except InvalidReference as error:
        return _invalid(number, text, str(error))


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1].strip()
    return value


def _invalid(number: int, text: str, message: str) -> PinResult:
    return PinResult(number, text, "invalid", message)


# --- resolving against recorded history ---------------------------------------------------------


class _Resolver:
    """Loads everything the pins need in a fixed number of queries, then decides each in Python."""

    def __init__(self, pins: list[_Pin]):
        self.pins = pins
        names = {(pin.reference.registry, pin.reference.repository) for pin in pins}
        self.repositories = {
            (repository.registry.host, repository.name): repository
            for repository in Repository.objects.filter(
                reduce(or_, (Q(registry__host=host, name=name) for host, name in names))
            ).select_related("registry")
        }
        ids = [repository.pk for repository in self.repositories.values()]
        tag_names = {pin.reference.tag for pin in pins if pin.reference.tag}
        digests = {pin.reference.digest for pin in pins if pin.reference.digest}
        self.tags = {
            (tag.repository_id, tag.name): tag
            for tag in Tag.objects.filter(repository_id__in=ids, name__in=tag_names).select_related(
                "state__build"
            )
        }
        self.builds = {
            (build.repository_id, build.digest): build
            for build in Build.objects.filter(repository_id__in=ids, digest__in=digests)
        }
        self.platforms: dict[tuple[int, str], list[Platform]] = {}
        for platform in Platform.objects.filter(
            build__repository_id__in=ids, digest__in=digests - {digest for _, digest in self.builds}
        ).select_related("build"):
            self.platforms.setdefault((platform.build.repository_id, platform.digest), []).append(platform)
        self._load_elsewhere()
        self._load_history()

    # --- loading -----------------------------------------------------------------------------

    def _repository(self, pin: _Pin) -> Repository | None:
        return self.repositories.get((pin.reference.registry, pin.reference.repository))

    def _state(self, pin: _Pin, repository: Repository) -> tuple[Tag | None, TagState | None]:
        tag = self.tags.get((repository.pk, pin.reference.tag)) if pin.reference.tag else None
        if tag is None:
            return None, None
        try:
            return tag, tag.state
        except TagState.DoesNotExist:
            return tag, None

    def _pinned(self, pin: _Pin, repository: Repository, state: TagState | None):
        """(the build the pinned digest is or belongs to, the platform it names or None)."""
        digest = pin.reference.digest
        if digest is None:
            return None, None
        if build := self.builds.get((repository.pk, digest)):
            return build, None
        candidates = self.platforms.get((repository.pk, digest), [])
        if not candidates:
            return None, None
        # a platform image shared by several builds: the current one if it is among them, else the newest
        current = state.build_id if state and state.present else None
        platform = next(
            (item for item in candidates if item.build_id == current),
            max(candidates, key=lambda item: (item.build.first_seen_at, item.build_id)),
        )
        return platform.build, platform

    def _load_elsewhere(self) -> None:
        """Digests unknown where pinned: the repositories that do have them, in one query."""
        unknown = set()
        for pin in self.pins:
            repository = self._repository(pin)
            if not pin.reference.digest:
                continue
            if repository is None or self._pinned(pin, repository, None)[0] is None:
                unknown.add(pin.reference.digest)
        self.elsewhere: dict[str, list[str]] = {}
        for build in Build.objects.filter(digest__in=unknown).select_related("repository__registry"):
            self.elsewhere.setdefault(build.digest, []).append(build.repository.reference)

    def _load_history(self) -> None:
        """For each tag whose pin is not current: when it last held the pinned build, and its moves since."""
        pairs, held_needed = set(), set()
        for pin in self.pins:
            repository = self._repository(pin)
            if repository is None:
                continue
            tag, state = self._state(pin, repository)
            pinned, _ = self._pinned(pin, repository, state)
            if pinned is None:
                continue
            if tag is not None and state is not None and state.build_id != pinned.pk:
                pairs.add((tag.pk, pinned.pk))
            held_needed.add(pinned)
        self.last_held: dict[tuple[int, int], datetime] = {}
        if pairs:
            self.last_held = {
                (row["tag_id"], row["build_id"]): row["last"]
                for row in TagEvent.objects.filter(
                    tag_id__in={tag for tag, _ in pairs}, build_id__in={build for _, build in pairs}
                )
                .values("tag_id", "build_id")
                .annotate(last=Max("detected_at"))
                .order_by()
            }
        since: dict[int, datetime] = {}
        for (tag, build), last in self.last_held.items():
            if (tag, build) in pairs:
                since[tag] = min(since.get(tag, last), last)
        self.moves: dict[int, list[tuple[int, datetime]]] = {}
        if since:
            later = reduce(or_, (Q(tag_id=tag, detected_at__gt=at) for tag, at in since.items()))
            rows = (
                TagEvent.objects.filter(later)
                .exclude(build=None)
                .values_list("tag_id", "build_id", "detected_at")
            )
            for tag, build, at in rows:
                self.moves.setdefault(tag, []).append((build, at))
        self.held: dict[int, list[HeldTag]] = TagEvent.objects.held(held_needed)

    # --- deciding ----------------------------------------------------------------------------

    def results(self) -> dict[int, PinResult]:
        return {pin.line: self._decide(pin) for pin in self.pins}

    def _decide(self, pin: _Pin) -> PinResult:
        reference = pin.reference
        base = {
            "line": pin.line,
            "text": pin.text,
            "reference": str(reference),
            "repository": reference.name,
            "tag": reference.tag,
            "digest": reference.digest,
        }
        repository = self._repository(pin)
        if repository is None:
            message = f"{reference.name} is not watched: tagledger has no history of it"
            if where := self.elsewhere.get(reference.digest or ""):
                message += f"; the digest is a build of {', '.join(where)}"
            return PinResult(**base, status="unknown", unknown="repository", message=message)
        tag, state = self._state(pin, repository)
        pinned, platform = self._pinned(pin, repository, state)
        if pinned is not None:
            base |= {"build_digest": pinned.digest, "build_id": pinned.pk}
            base["platform"] = str(platform) if platform else None
        if reference.tag is None:
            return self._digest_only(pin, base, pinned)
        if state is None:
            return self._unknown_tag(pin, base, repository, pinned)
        current = state.build
        base |= {"current_digest": current.digest, "current_build_id": current.pk}
        base["confirmed_at"] = state.confirmed_at
        now = short_digest(current.digest)
        if not state.present:
            gone = "was deleted from" if _tracked(repository, reference.tag) else "is not tracked any more in"
            message = f"the tag {reference.tag} {gone} {reference.name}; it last pointed to {now}"
            return PinResult(**base, status="unknown", unknown="tag", message=message)
        base["current_reference"] = str(reference.with_digest(current.digest))
        if reference.digest is None:
            message = f"not pinned: the tag {reference.tag} points to {now} now; pin it to that digest"
            return PinResult(**base, status="no_digest", message=message)
        if pinned is None:
            message = f"{short_digest(reference.digest)} was never seen in {reference.name}"
            if where := self.elsewhere.get(reference.digest):
                message += f" (it is a build of {', '.join(where)})"
            return PinResult(
                **base,
                status="unknown",
                unknown="digest",
                message=f"{message}; the tag {reference.tag} points to {now} now",
            )
        of_platform = f" (its {platform} image)" if platform else ""
        if pinned.pk == current.pk:
            return PinResult(
                **base,
                status="current",
                message=f"the tag {reference.tag} points to this build{of_platform} now",
            )
        last = self.last_held.get((tag.pk, pinned.pk))
        if last is not None:
            moves = self.moves.get(tag.pk, [])
            behind = len({build for build, at in moves if at > last and build != pinned.pk})
            return PinResult(
                **base,
                status="behind",
                builds_behind=behind,
                message=(
                    f"the tag {reference.tag} moved on: {plural(behind, 'build')} since this one"
                    f"{of_platform}; it points to {now} now"
                ),
            )
        return self._wrong_tag(
            base, pinned, f"the tag {reference.tag} never pointed to this build{of_platform}"
        )

    def _digest_only(self, pin: _Pin, base: dict, pinned: Build | None) -> PinResult:
        reference = pin.reference
        if pinned is None:
            message = f"{short_digest(reference.digest)} was never seen in {reference.name}"
            if where := self.elsewhere.get(reference.digest):
                message += f"; it is a build of {', '.join(where)}"
            return PinResult(**base, status="unknown", unknown="digest", message=message)
        now = sorted({held.tag for held in self.held[pinned.pk] if held.until is None})
        if now:
            tags = f"the tag {now[0]} points" if len(now) == 1 else f"the tags {', '.join(now)} point"
            return PinResult(
                **base,
                status="current",
                held_by=tuple(now),
                current_digest=pinned.digest,
                current_build_id=pinned.pk,
                current_reference=str(reference.with_tag(now[0]).with_digest(pinned.digest)),
                message=f"pinned by digest alone; {tags} to it now",
            )
        return self._wrong_tag(base, pinned, "pinned by digest alone, and no tag points to it now")

    def _unknown_tag(self, pin: _Pin, base: dict, repository: Repository, pinned: Build | None) -> PinResult:
        reference = pin.reference
        missing = f"{reference.name} has no recorded tag {reference.tag}"
        if not _tracked(repository, reference.tag):
            missing += " (the repository's tag filters leave it out)"
        if pinned is not None:
            return self._wrong_tag(base, pinned, missing)
        if reference.digest is not None:
            missing += f", nor the digest {short_digest(reference.digest)}"
            if where := self.elsewhere.get(reference.digest):
                missing += f" (it is a build of {', '.join(where)})"
        return PinResult(**base, status="unknown", unknown="tag", message=missing)

    def _wrong_tag(self, base: dict, pinned: Build, why: str) -> PinResult:
        held_by = tuple(dict.fromkeys(held.tag for held in self.held[pinned.pk]))
        which = f"tags that did: {', '.join(held_by)}" if held_by else "no recorded tag ever pointed to it"
        return PinResult(
            **base,
            status="not_a_build_of_tag",
            held_by=held_by,
            message=f"{why}; it is a build of {base['repository']}, {which}",
        )


def _tracked(repository: Repository, tag: str) -> bool:
    """Whether the repository's include/exclude patterns take the tag (one that ran out of time
    counts as not: its polls cannot check it either)."""
    try:
        return repository.wants_tag(tag)
    except PatternError:
        return False
