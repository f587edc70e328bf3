"""The packages an SBOM lists: SPDX 2.x JSON and CycloneDX 1.x JSON, read into one bounded shape.

Pure: it takes a parsed JSON value (the body of a `.sbom` tag, the predicate of an in-toto
statement) and returns an `Sbom`, or raises `UnreadableDocument`. Whoever pushed the SBOM chose
every value in it, so each field is read with the type its spec gives it and dropped otherwise;
only a document that cannot be an SBOM at all (no version it declares, packages that are no list)
fails, and then only the attachment it came in.

What a package is, in both formats:
- its name, version, purl and type, where type is the purl's type (`apk`, `deb`, `npm`, ...), so
  that compare and search see one vocabulary whichever format or tool wrote the SBOM. A package
  without a purl that packageurl-python parses keeps purl "" and type "": the formats' own kinds
  (SPDX's primaryPackagePurpose, CycloneDX's `library`) say less than nothing when mixed with purl types.
- purls are normalised by packageurl-python (`pkg:PyPI/Django` and `pkg:pypi/django` are one);
- the image itself is no package of the image. The SBOM of an image describes the image as a
  root element, which a package list would otherwise count as a package of itself. Skipped:
  SPDX packages whose purl is of type `oci` or `docker`, whose primaryPackagePurpose is
  CONTAINER, or whose SPDXID is syft's `SPDXRef-DocumentRoot-…` (the image, directory or file
  it scanned); CycloneDX's `metadata.component` (outside the components list by the spec) and
  components of type `container` (an image) or `file` (a file, which syft lists by the thousand).
- a package without a name is dropped; the rest are deduplicated and sorted, at most MAX_PACKAGES.
"""

import re
from dataclasses import dataclass
from typing import Any

from packageurl import PackageURL

from catalog.oci.manifest import dict_or_empty, list_or_empty, storable_text
from catalog.text import quoted

# The column sizes of history.models.Package.
MAX_NAME = 512
MAX_VERSION = 256
MAX_PURL = 2048
MAX_TYPE = 64
#: An image's SBOM lists a few hundred packages; a build toolchain's a few thousand. Past this
#: many distinct packages the first MAX_PACKAGES in sort order are kept and `truncated` says so.
MAX_PACKAGES = 20_000
#: CycloneDX nests components in components (a jar in a jar): real SBOMs go three or four deep.
#: Deeper ones are not read (JSON depth is bounded by whoever parsed the document, too).
MAX_COMPONENT_DEPTH = 32
#: The tool names an SBOM gives (`syft-1.4.1`), joined; details strings stay short.
MAX_TOOL = 256
MAX_TOOLS = 8

_SPDX_VERSION = re.compile(r"SPDX-(2\.[0-9]{1,2})")
_CYCLONEDX_VERSION = re.compile(r"1\.[0-9]{1,2}")
# NUL and the other C0/C1 controls and DEL: no name or version has them, and a page shows them badly.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# The purl types of an image: the document's root, never a package in it.
_IMAGE_PURL_TYPES = {"oci", "docker"}
_PACKAGE_MANAGER = {"PACKAGE-MANAGER", "PACKAGE_MANAGER"}
_SKIPPED_COMPONENT_TYPES = {"container", "file"}


class UnreadableDocument(ValueError):
    """An SBOM, statement or report that cannot be read; the message says why, for a person."""


@dataclass(frozen=True, order=True)
class Package:
    name: str
    version: str
    type: str  # the purl type ("deb", "apk", "npm", ...), or "" without a purl
    purl: str  # normalised by packageurl-python, or ""


@dataclass(frozen=True)
class Sbom:
    format: str  # "SPDX 2.3", "CycloneDX 1.5"
    tool: str  # "syft-1.4.1"; "" when the document names none
    packages: tuple[Package, ...]  # deduplicated, sorted, at most MAX_PACKAGES
    truncated: bool = False  # more distinct packages than MAX_PACKAGES: the rest were cut


def parse_sbom(document: object) -> Sbom:
    """The packages of an SPDX 2.x or CycloneDX 1.x JSON document (already parsed)."""
    if not isinstance(document, dict):
        raise UnreadableDocument("the SBOM is not a JSON object")
    if "spdxVersion" in document:
        return _spdx(document)
    if document.get("bomFormat") == "CycloneDX" or "specVersion" in document:
        return _cyclonedx(document)
    raise UnreadableDocument("neither SPDX (no spdxVersion) nor CycloneDX (no bomFormat or specVersion)")


def is_sbom(document: object) -> bool:
    """Whether a parsed JSON value says it is SPDX or CycloneDX (for callers that sniff)."""
    return isinstance(document, dict) and (
        "spdxVersion" in document or document.get("bomFormat") == "CycloneDX"
    )


# --- SPDX ----------------------------------------------------------------------------------------


def _spdx(document: dict) -> Sbom:
    version = document.get("spdxVersion")
    match = _SPDX_VERSION.fullmatch(version) if isinstance(version, str) else None
    if not match:
        raise UnreadableDocument(f"SPDX version {_shown(version)} is not read: SPDX 2.x JSON is")
    creators = dict_or_empty(document.get("creationInfo")).get("creators")
    tools = [
        creator.split(":", 1)[1]
        for creator in list_or_empty(creators)
        if isinstance(creator, str) and creator.startswith("Tool:")
    ]
    return _sbom(f"SPDX {match[1]}", tools, _spdx_packages(_list(document.get("packages"), "SPDX packages")))


def _spdx_packages(packages: list):
    for package in packages:
        if not isinstance(package, dict):
            continue
        purl = next(
            (
                ref.get("referenceLocator")
                for ref in list_or_empty(package.get("externalRefs"))
                if isinstance(ref, dict)
                and _text(ref.get("referenceCategory"), MAX_TYPE) in _PACKAGE_MANAGER
                and ref.get("referenceType") == "purl"
            ),
            None,
        )
        spdx_id = package.get("SPDXID")
        if package.get("primaryPackagePurpose") == "CONTAINER" or (
            isinstance(spdx_id, str) and spdx_id.startswith("SPDXRef-DocumentRoot-")
        ):
            continue
        yield package.get("name"), package.get("versionInfo"), purl


# --- CycloneDX -----------------------------------------------------------------------------------


def _cyclonedx(document: dict) -> Sbom:
    version = document.get("specVersion")
    if not isinstance(version, str) or not _CYCLONEDX_VERSION.fullmatch(version):
        raise UnreadableDocument(
            f"CycloneDX specVersion {_shown(version)} is not read: CycloneDX 1.x JSON is"
        )
    tools = dict_or_empty(document.get("metadata")).get("tools")
    # 1.4 lists tools; 1.5 and later group them as {"components": [...], "services": [...]}.
    if isinstance(tools, dict):
        tools = list_or_empty(tools.get("components")) + list_or_empty(tools.get("services"))
    names = []
    for tool in list_or_empty(tools):
        name, release = (dict_or_empty(tool).get(key) for key in ("name", "version"))
        if isinstance(name, str) and name.strip():
            names.append(f"{name}-{release}" if isinstance(release, str) and release.strip() else name)
    components = _list(document.get("components"), "CycloneDX components")
    return _sbom(f"CycloneDX {version}", names, _cyclonedx_components(components))


def _cyclonedx_components(components: list):
    # Depth first with a stack of iterators rather than recursion: the depth is bounded either way,
    # and a list of a million siblings costs no frames.
    stack = [iter(components)]
    while stack:
        component = next(stack[-1], _END)
        if component is _END:
            stack.pop()
            continue
        if not isinstance(component, dict):
            continue
        if len(stack) < MAX_COMPONENT_DEPTH and isinstance(nested := component.get("components"), list):
            stack.append(iter(nested))
        if _text(component.get("type"), MAX_TYPE) in _SKIPPED_COMPONENT_TYPES:
            continue
        yield component.get("name"), component.get("version"), component.get("purl")


_END = object()


# --- both ----------------------------------------------------------------------------------------


def _sbom(named: str, tools: list, entries) -> Sbom:
    packages = set()
    for name, version, purl in entries:
        if package := _package(name, version, purl):
            packages.add(package)
    ordered = sorted(packages)
    names = (_text(tool, MAX_TOOL).strip() for tool in tools[:MAX_TOOLS])
    tool = ", ".join(dict.fromkeys(name for name in names if name))
    return Sbom(named, tool[:MAX_TOOL], tuple(ordered[:MAX_PACKAGES]), len(ordered) > MAX_PACKAGES)


def _package(name: Any, version: Any, purl: Any) -> Package | None:
    name = _text(name, MAX_NAME).strip()
    if not name:
        return None
    purl, kind = _purl(purl)
    if kind in _IMAGE_PURL_TYPES:
        return None  # the image, or an image it names: see the module's docstring
    return Package(name, _text(version, MAX_VERSION).strip(), kind, purl)


def _purl(value: Any) -> tuple[str, str]:
    """A purl normalised, and its type; ("", "") when it does not parse or does not fit the column."""
    # A purl longer than the column, cut short, would name another package (or none): keep none.
    if not isinstance(value, str) or len(value) > 2 * MAX_PURL:
        return "", ""
    try:
        parsed = PackageURL.from_string(value)
        purl = parsed.to_string()
    except ValueError:  # every malformed purl packageurl-python refuses (UnicodeError is one)
        return "", ""
    if len(purl) > MAX_PURL or len(parsed.type) > MAX_TYPE or _CONTROLS.search(purl):
        return "", ""
    return storable_text(purl), storable_text(parsed.type)


def _text(value: Any, limit: int) -> str:
    """A string value cleaned for PostgreSQL and a page (no NUL, no control characters), cut to
    `limit`; "" for any other JSON type (a number as a name is no name)."""
    if not isinstance(value, str):
        return ""
    return _CONTROLS.sub("", storable_text(value[: limit * 2]))[:limit]


def _list(value: Any, what: str) -> list:
    """The package list of an SBOM: absent is an SBOM of nothing, another type is no SBOM."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise UnreadableDocument(f"{what} are not a list")
    return value


def _shown(value: Any) -> str:
    return quoted(value, 40)
