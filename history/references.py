"""What a pasted reference names among the watched repositories: the one resolver search, compare
and `manage.py lookup` read `name`, `name:tag`, `name@digest` and `name:tag@digest` with.

People paste references the way they use them, not the way tagledger stores them:

- with or without the registry host: `demo/python:3.14` is `127.0.0.1:5000/demo/python:3.14`
  when that is the only watched repository whose path ends in `demo/python`; `python:3.14` is
  every watched repository whose last path component is `python` (all of them are listed, never
  one guessed), unless one is exactly what `docker pull python:3.14` would fetch
  (`docker.io/library/python`), which then wins, as it would for docker;
- with or without Docker Hub's `library/`: `python`, `library/python`, `docker.io/library/python`
  and `index.docker.io/library/python` are one name (catalog.oci.reference normalises them);
- with a host the instance knows under another spelling: `registry/demo/python` matches a
  repository on `registry:5000` (the first component is the host without its port).

Repositories are few (hundreds), so candidates are found by their last path component, then
checked in Python. Tags are many (a repository may have 100 000s): they are only ever looked up by
exact name within the candidate repositories, one index seek on (repository, name) each.
"""

import re
from dataclasses import dataclass

from django.db.models import Q

from catalog.models import Repository
from catalog.oci.reference import (
    DEFAULT_REGISTRY,
    ImageReference,
    InvalidReference,
    is_valid_tag,
    parse,
)
from catalog.text import quoted

OFFICIAL = "library/"
MAX_CANDIDATES = 50  # a name that matches more repositories than this lists the first ones

# The name part as typed: what the reference grammar allows before `:tag` / `@digest`.
_TYPED_RE = re.compile(r"[A-Za-z0-9._/:\[\]-]+")


@dataclass(frozen=True)
class Pasted:
    """A reference as typed, and the watched repositories its name may mean.

    `exact`: the repository the normalised reference names, as `docker pull` would read it (at
    most one); `near`: the others whose `host/path` ends in the name as typed. The exact one is
    asked first; the near ones when it is not watched, or has nothing of that name."""

    text: str
    reference: ImageReference
    exact: list[Repository]
    near: list[Repository]

    @property
    def repositories(self) -> list[Repository]:
        """Where to look first."""
        return self.exact or self.near

    @property
    def wider(self) -> list[Repository]:
        """Where to look when the first place has nothing: the near ones, if the exact one came first."""
        return self.near if self.exact else []

    @property
    def tag(self) -> str | None:
        return self.reference.tag

    @property
    def digest(self) -> str | None:
        return self.reference.digest

    def describe(self, repositories: list[Repository] | None = None) -> str:
        """Repositories for a message: `a, b and c`."""
        names = [
            repository.reference
            for repository in (self.repositories if repositories is None else repositories)
        ]
        if len(names) < 2:
            return "".join(names)
        return ", ".join(names[:-1]) + " and " + names[-1]


def read(text: str) -> Pasted:
    """The repositories `text` (a reference, familiar or full) may name; raises InvalidReference."""
    reference = parse(text)
    exact = list(
        Repository.objects.filter(
            registry__host=reference.registry, name=reference.repository
        ).select_related("registry")
    )
    near = [repository for repository in by_suffix(_typed_name(text)) if repository not in exact]
    return Pasted(text, reference, exact, near)


def by_suffix(typed: str) -> list[Repository]:
    """Watched repositories whose `host/path` ends in the path components of `typed` (compared
    without Docker Hub's `library/` and a host's port), ordered by host and name."""
    wanted = _components(typed)
    if not wanted:
        return []
    last = wanted[-1]
    found = (
        Repository.objects.filter(Q(name=last) | Q(name__endswith="/" + last))
        .select_related("registry")
        .order_by("registry__host", "name")
    )
    return [repository for repository in found if _ends_with(repository, wanted)][:MAX_CANDIDATES]


def is_bare_tag(text: str) -> bool:
    """Whether `text` could be a tag or version alone (`3.14.4`, `latest`), with no name before it."""
    return is_valid_tag(text) and "/" not in text


def _typed_name(text: str) -> str:
    """The name part of `text` as typed: before `@digest`, and before a `:tag` after the last `/`."""
    name = text.partition("@")[0]
    head, slash, last = name.rpartition("/")
    return head + slash + last.partition(":")[0]


def _components(typed: str) -> list[str]:
    """`index.docker.io/library/python` → [python]; `registry:5000/demo/python` → [registry,
    demo, python]: lowercase path components, the port of a leading host dropped, Docker Hub's
    host and `library/` dropped, since a suffix match never needs them."""
    if not _TYPED_RE.fullmatch(typed):
        return []
    parts = [part for part in typed.lower().split("/") if part]
    if parts and parts[0] in (DEFAULT_REGISTRY, "index.docker.io", "registry-1.docker.io"):
        parts = parts[1:]
    if parts and parts[0] + "/" == OFFICIAL and len(parts) == 2:
        parts = parts[1:]
    if parts:
        parts[0] = _without_port(parts[0])
    return parts


def _ends_with(repository: Repository, wanted: list[str]) -> bool:
    path = repository.name.lower().split("/")
    if repository.registry.host == DEFAULT_REGISTRY and len(path) == 2 and path[0] + "/" == OFFICIAL:
        path = path[1:]
    full = [_without_port(repository.registry.host.lower()), *path]
    return len(wanted) <= len(full) and full[-len(wanted) :] == wanted


def _without_port(host: str) -> str:
    if host.startswith("["):  # [::1]:5000
        return host.partition("]")[0] + "]"
    return host.rpartition(":")[0] if re.fullmatch(r"[^:]+:[0-9]+", host) else host


def unknown(pasted: Pasted) -> str:
    """Why a pasted name names nothing watched."""
    return (
        f"no watched repository is named {quoted(_typed_name(pasted.text))} (with or without a registry host)"
    )


__all__ = ["InvalidReference", "Pasted", "by_suffix", "is_bare_tag", "read", "unknown"]
