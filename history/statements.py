"""What one supply-chain document says: an in-toto statement (bare or in a DSSE envelope), a raw
SBOM or a scanner's report, read into the `details` of its Attachment kind.

Pure, like history.sbom: bytes in, `Contents` out, or `UnreadableDocument` with a reason a person
can act on. The body says what it is: a registry labels a layer with any media type it likes
(cosign's `.att` layers are DSSE envelopes, BuildKit's are bare statements, a `.sbom` layer may be
either format), so each document is recognised by its own fields, and the media type only names
it in the message when nothing matches.

Provenance is SLSA v0.2 or v1 as BuildKit, GitHub's generator and others write it; the source
repository and commit come from the first of: the config source (a remote Git context), a
material or resolved dependency with a Git commit digest, BuildKit's `vcs` metadata (what the
client said, unverified by BuildKit; a hint, but the only one for builds from a local checkout).
Vulnerability counts come from the scan result a cosign `vuln` or in-toto `vulns` predicate
carries, or from a report that is the document itself: SARIF 2.1.0, Trivy JSON, Grype JSON.
"""

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from catalog.oci.errors import BadResponse
from catalog.oci.manifest import (
    dict_or_empty,
    is_digest,
    json_object,
    list_or_empty,
    parse_time,
    storable_text,
)
from catalog.text import quoted

from .sbom import Package, UnreadableDocument, is_sbom, parse_sbom

#: Callers fetch a blob with this limit; a larger body is refused here too.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
#: A statement names the image it describes, or each platform image of a build: a handful.
MAX_SUBJECTS = 256
MAX_SIGNATURES = 16
#: Every string of `details` is at most this long (Attachment.details is shown as it is).
MAX_DETAIL = 1000
MAX_PREDICATE_TYPE = 256  # Attachment.predicate_type
#: Materials and resolved dependencies looked at for the source; BuildKit lists Git ones first.
MAX_ENTRIES = 1000

IN_TOTO = "application/vnd.in-toto+json"
DSSE = "application/vnd.dsse.envelope.v1+json"
COSIGN_VULN = "https://cosign.sigstore.dev/attestation/vuln/v1"
BUILDKIT_METADATA = "https://mobyproject.org/buildkit@v1#metadata"

_STATEMENT = re.compile(r"https://in-toto\.io/Statement/v[0-9][0-9.]*")
_PREDICATE_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[\x21-\x7e]+")  # a URI, as history.supply reads one
_SPDX = re.compile(r"https://spdx\.dev/Document(?:/v?[0-9.]+)?")
_CYCLONEDX = re.compile(r"https://cyclonedx\.org/(?:bom|schema)(?:/v?[0-9.]+)?")
_IN_TOTO_VULNS = re.compile(r"https://in-toto\.io/attestation/vulns(?:/v[0-9.]+)?")
_SLSA = re.compile(r"https://slsa\.dev/provenance/v(0\.1|0\.2|1)(?:\.[0-9]+)?")
_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # a Git object id: SHA-1, or SHA-256 repositories
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")

SEVERITIES = ("critical", "high", "medium", "low", "unknown")
# The words scanners use: Trivy's CRITICAL…UNKNOWN, Grype's Negligible, GitHub's moderate.
_SEVERITY_WORDS = {
    "critical": "critical",
    "high": "high",
    "medium": "medium",
    "moderate": "medium",
    "low": "low",
    "negligible": "low",
}
# SARIF's result level, when no rule gives a security-severity: what Trivy and Grype write for each.
_SARIF_LEVELS = {"error": "high", "warning": "medium", "note": "low"}


@dataclass(frozen=True)
class Contents:
    kind: str  # Attachment.Kind: "sbom" | "provenance" | "vulnerabilities" | "attestation"
    predicate_type: str  # "" for a raw SBOM or report
    subjects: tuple[str, ...]  # the digests a statement names ("sha256:<hex>"); () for a raw document
    details: dict  # as Attachment.details says, by kind
    packages: tuple[Package, ...] = ()  # of an SBOM
    truncated: bool = False  # an SBOM of more than sbom.MAX_PACKAGES packages: the rest were cut


@dataclass(frozen=True)
class Envelope:
    """A DSSE envelope: the payload decoded, and each signature's bytes decoded."""

    payload_type: str
    payload: bytes
    signatures: tuple[bytes, ...] = field(default=())


def read_document(body: bytes, media_type: str, predicate_type: str = "") -> Contents:
    """What one blob says. `predicate_type` (the layer's `in-toto.io/predicate-type` annotation)
    stands in for a statement's own predicateType only when the statement has none."""
    document = _json(body, "the document")
    if _is_envelope(document):
        payload_type, payload = _envelope_payload(document)
        if payload_type != IN_TOTO:
            raise UnreadableDocument(f"the envelope's payloadType is {quoted(payload_type)}, not {IN_TOTO}")
        statement = _json(payload, "the envelope's payload")
        if not _is_statement(statement):
            raise UnreadableDocument("the envelope's payload is not an in-toto statement")
        return _statement(statement, predicate_type)
    if _is_statement(document):
        return _statement(document, predicate_type)
    if is_sbom(document):
        return _sbom_contents(document, "")
    if (report := _report(document)) is not None:
        return Contents("vulnerabilities", "", (), report)
    raise UnreadableDocument(
        f"a document of media type {quoted(media_type, 60)} that is neither an in-toto statement, "
        "a DSSE envelope, SPDX, CycloneDX, SARIF, Trivy nor Grype JSON"
    )


def kind_of(predicate_type: str) -> str:
    """The Attachment kind of a predicate type: sbom, provenance, vulnerabilities or attestation."""
    if _SPDX.fullmatch(predicate_type) or _CYCLONEDX.fullmatch(predicate_type):
        return "sbom"
    if _SLSA.fullmatch(predicate_type):
        return "provenance"
    if predicate_type == COSIGN_VULN or _IN_TOTO_VULNS.fullmatch(predicate_type):
        return "vulnerabilities"
    return "attestation"


# --- DSSE ----------------------------------------------------------------------------------------


def parse_envelope(body: bytes) -> Envelope:
    """A DSSE envelope whole: every signature must decode too (a signature check needs them all;
    reading the statement does not, so read_document skips them)."""
    document = _json(body, "the envelope")
    if not _is_envelope(document):
        raise UnreadableDocument("not a DSSE envelope: no payloadType and payload")
    payload_type, payload = _envelope_payload(document)
    signatures = document.get("signatures")
    if not isinstance(signatures, list):
        raise UnreadableDocument("the envelope's signatures are not a list")
    decoded = []
    for number, signature in enumerate(signatures[:MAX_SIGNATURES], 1):
        sig = dict_or_empty(signature).get("sig")
        if not isinstance(sig, str):
            raise UnreadableDocument(f"the envelope's signature {number} has no sig")
        decoded.append(decode_base64(sig, f"the envelope's signature {number}"))
    return Envelope(payload_type, payload, tuple(decoded))


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: the bytes a DSSE signature signs."""
    kind = payload_type.encode("utf-8", "surrogatepass")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def _is_envelope(document: dict) -> bool:
    return "payloadType" in document and "payload" in document


def _envelope_payload(document: dict) -> tuple[str, bytes]:
    payload_type = document.get("payloadType")
    if not isinstance(payload_type, str):
        raise UnreadableDocument("the envelope's payloadType is not text")
    payload = document.get("payload")
    if not isinstance(payload, str):
        raise UnreadableDocument("the envelope's payload is not text")
    return storable_text(payload_type, MAX_DETAIL), decode_base64(payload, "the envelope's payload")


def decode_base64(text: str, what: str) -> bytes:
    """Base64 as DSSE producers write it: standard or URL-safe alphabet, padded or not, and line
    breaks skipped (Go's decoder skips them, so envelopes with them verify elsewhere)."""
    text = text.replace("\n", "").replace("\r", "")
    if not text.isascii():
        raise UnreadableDocument(f"{what} is not base64")
    text = text.rstrip("=").translate(_URL_SAFE)
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        raise UnreadableDocument(f"{what} is not base64") from None


_URL_SAFE = str.maketrans("-_", "+/")


# --- in-toto statements --------------------------------------------------------------------------


def _is_statement(document: dict) -> bool:
    return "_type" in document or "predicateType" in document


def _statement(document: dict, annotated: str) -> Contents:
    kind = document.get("_type")
    if not isinstance(kind, str) or not _STATEMENT.fullmatch(kind):
        raise UnreadableDocument(f"not an in-toto statement: _type is {quoted(kind, 60)}")
    predicate_type = document.get("predicateType")
    if predicate_type is None or predicate_type == "":
        predicate_type = annotated
    if not isinstance(predicate_type, str) or not predicate_type:
        raise UnreadableDocument("the statement has no predicateType")
    if len(predicate_type) > MAX_PREDICATE_TYPE or not _PREDICATE_TYPE.fullmatch(predicate_type):
        raise UnreadableDocument(f"the statement's predicateType is no URI: {quoted(predicate_type, 60)}")
    subjects = _subjects(document.get("subject"))
    predicate = document.get("predicate")
    match kind_of(predicate_type):
        case "sbom":
            return _sbom_contents(predicate, predicate_type, subjects)
        case "provenance":
            details = _provenance(_predicate(predicate), _SLSA.fullmatch(predicate_type)[1])
            return Contents("provenance", predicate_type, subjects, details)
        case "vulnerabilities":
            return Contents(
                "vulnerabilities", predicate_type, subjects, _vuln_predicate(_predicate(predicate))
            )
    return Contents("attestation", predicate_type, subjects, {})


def _subjects(value: Any) -> tuple[str, ...]:
    """`sha256:<hex>` (or sha512) for each digest a subject gives, in order, without repeats."""
    digests = []
    for subject in list_or_empty(value)[:MAX_SUBJECTS]:
        for algorithm, hex_digest in dict_or_empty(dict_or_empty(subject).get("digest")).items():
            if is_digest(digest := f"{algorithm}:{hex_digest}" if isinstance(hex_digest, str) else ""):
                digests.append(digest)
    return tuple(dict.fromkeys(digests))


def _predicate(value: Any) -> dict:
    if not isinstance(value, dict):
        raise UnreadableDocument("the statement's predicate is not a JSON object")
    return value


def _sbom_contents(document: Any, predicate_type: str, subjects: tuple[str, ...] = ()) -> Contents:
    sbom = parse_sbom(document)
    details = {"format": sbom.format, "tool": sbom.tool, "package_count": len(sbom.packages)}
    return Contents("sbom", predicate_type, subjects, details, sbom.packages, sbom.truncated)


# --- SLSA provenance -----------------------------------------------------------------------------


def _provenance(predicate: dict, version: str) -> dict:
    if version == "1":
        definition = dict_or_empty(predicate.get("buildDefinition"))
        run = dict_or_empty(predicate.get("runDetails"))
        metadata = dict_or_empty(run.get("metadata"))
        builder = dict_or_empty(run.get("builder")).get("id")
        build_type = definition.get("buildType")
        parameters = dict_or_empty(definition.get("externalParameters"))
        sources = [parameters.get("configSource"), *list_or_empty(definition.get("resolvedDependencies"))]
        vcs = dict_or_empty(dict_or_empty(metadata.get("buildkit_metadata")).get("vcs"))
        started, finished = metadata.get("startedOn"), metadata.get("finishedOn")
    else:  # v0.2, and v0.1 whose recipe became v0.2's buildType and invocation
        invocation = dict_or_empty(predicate.get("invocation"))
        metadata = dict_or_empty(predicate.get("metadata"))
        builder = dict_or_empty(predicate.get("builder")).get("id")
        build_type = predicate.get("buildType", dict_or_empty(predicate.get("recipe")).get("type"))
        sources = [invocation.get("configSource"), *list_or_empty(predicate.get("materials"))]
        vcs = dict_or_empty(dict_or_empty(metadata.get(BUILDKIT_METADATA)).get("vcs"))
        started, finished = metadata.get("buildStartedOn"), metadata.get("buildFinishedOn")
    repository, commit = _source(sources, vcs)
    return {
        "builder": _detail(builder),
        "build_type": _detail(build_type),
        "source_repository": repository,
        "source_commit": commit,
        "started_at": _time(started),
        "finished_at": _time(finished),
        "slsa": "v1" if version == "1" else f"v{version}",
    }


def _source(sources: list, vcs: dict) -> tuple[str, str]:
    """The repository and commit built: the first source with a Git commit digest, else what
    BuildKit's vcs metadata says; ("", "") when nothing does."""
    for source in sources[:MAX_ENTRIES]:
        source = dict_or_empty(source)
        digest = dict_or_empty(source.get("digest"))
        commit = digest.get("gitCommit", digest.get("sha1"))
        if isinstance(commit, str) and _COMMIT.fullmatch(commit) and isinstance(source.get("uri"), str):
            return _repository(source["uri"]), commit
    revision = vcs.get("revision")
    commit = revision if isinstance(revision, str) and _COMMIT.fullmatch(revision) else ""
    return _repository(vcs.get("source")), commit


def _repository(uri: Any) -> str:
    """A repository as a person names it: `git+https://github.com/o/r@refs/heads/main` and
    `https://github.com/o/r.git#refs/tags/v1` name their repository without the ref; and no
    credentials a build system left in the URL."""
    if not isinstance(uri, str):
        return ""
    uri = _detail(uri.removeprefix("git+")).partition("#")[0]
    if "@refs/" in uri:
        uri = uri.rpartition("@refs/")[0]
    try:
        parts = urlsplit(uri)
    except ValueError:  # a bracketed host that is no IPv6 address, say
        return uri
    if parts.scheme in ("http", "https", "ssh", "git") and "@" in parts.netloc:
        uri = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    return uri


def _time(value: Any) -> str | None:
    moment = parse_time(value)
    return moment.isoformat() if moment else None


# --- vulnerability reports -----------------------------------------------------------------------


def _vuln_predicate(predicate: dict) -> dict:
    """cosign's vuln predicate (the scanner, and its result as the scanner wrote it) or in-toto's
    vulns predicate (the same scanner, and its result as a list of vulnerabilities)."""
    scanner = dict_or_empty(predicate.get("scanner"))
    result = scanner.get("result")
    if isinstance(result, list):
        report = _summary("", (_listed_severity(item) for item in result))
    elif (report := _report(dict_or_empty(result))) is None:
        raise UnreadableDocument("the scan result is neither SARIF, Trivy, Grype JSON nor a list")
    named = " ".join(_detail(scanner.get(key)) for key in ("uri", "version")).strip()
    return report | {"scanner": named[:MAX_DETAIL]} if named else report


def _report(document: dict) -> dict | None:
    """Counts by severity of SARIF, Trivy or Grype JSON; None when the document is none of them."""
    schema, version = _detail(document.get("$schema")), _detail(document.get("version"))
    if isinstance(document.get("runs"), list) and ("sarif" in schema.lower() or version.startswith("2.")):
        return _sarif(document)
    if isinstance(document.get("Results"), list):
        scanner = " ".join(("Trivy", _detail(dict_or_empty(document.get("Trivy")).get("Version")))).strip()
        severities = (
            _word(dict_or_empty(vulnerability).get("Severity"))
            for result in document["Results"]
            for vulnerability in list_or_empty(dict_or_empty(result).get("Vulnerabilities"))
        )
        return _summary(scanner, severities)
    if isinstance(document.get("matches"), list):
        descriptor = dict_or_empty(document.get("descriptor"))
        scanner = " ".join(_detail(descriptor.get(key)) for key in ("name", "version")).strip()
        severities = (
            _word(dict_or_empty(dict_or_empty(match).get("vulnerability")).get("severity"))
            for match in document["matches"]
        )
        return _summary(scanner or "Grype", severities)
    return None


def _sarif(document: dict) -> dict:
    scanners, severities = [], []
    for run in document["runs"]:
        driver = dict_or_empty(dict_or_empty(dict_or_empty(run).get("tool")).get("driver"))
        scanners.append(" ".join(_detail(driver.get(key)) for key in ("name", "version")).strip())
        rules = [dict_or_empty(rule) for rule in list_or_empty(driver.get("rules"))]
        by_id = {rule["id"]: rule for rule in rules if isinstance(rule.get("id"), str)}
        for result in list_or_empty(dict_or_empty(run).get("results")):
            result = dict_or_empty(result)
            index = result.get("ruleIndex")
            rule = (
                rules[index]
                if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(rules)
                else by_id.get(_detail(result.get("ruleId")), {})
            )
            score = dict_or_empty(result.get("properties")).get(
                "security-severity", dict_or_empty(rule.get("properties")).get("security-severity")
            )
            level = result.get("level", dict_or_empty(rule.get("defaultConfiguration")).get("level"))
            severities.append(_score(score) or _SARIF_LEVELS.get(_detail(level), "unknown"))
    return _summary(", ".join(dict.fromkeys(name for name in scanners if name)), severities)


def _listed_severity(item: Any) -> str:
    """An in-toto vulns result's severity: a list of {method, score}, where a score is a word
    ("medium") or a CVSS number ("5.2"); the first word, else the first number, says which."""
    item = dict_or_empty(item)
    scores = [
        dict_or_empty(entry).get("score")
        for entry in list_or_empty(dict_or_empty(item.get("vulnerability", item)).get("severity"))
    ]
    words = (_SEVERITY_WORDS.get(_detail(score).lower()) for score in scores)
    return next(filter(None, words), None) or next(filter(None, map(_score, scores)), "unknown")


def _score(value: Any) -> str:
    """A CVSS score (SARIF's security-severity is a number written as text) as a severity; "" if none."""
    if isinstance(value, bool):
        return ""
    try:
        score = float(value) if isinstance(value, (int, float, str)) and len(str(value)) < 32 else None
    except ValueError:
        return ""
    if score is None or score != score:  # NaN
        return ""
    if score >= 9:
        return "critical"
    if score >= 7:
        return "high"
    if score >= 4:
        return "medium"
    return "low" if score > 0 else "unknown"


def _word(value: Any) -> str:
    return _SEVERITY_WORDS.get(value.strip().lower(), "unknown") if isinstance(value, str) else "unknown"


def _summary(scanner: str, severities) -> dict:
    counts = dict.fromkeys(SEVERITIES, 0)
    for severity in severities:
        counts[severity] += 1
    return {"scanner": scanner[:MAX_DETAIL], "counts": counts, "total": sum(counts.values())}


# --- both ----------------------------------------------------------------------------------------


def _json(body: bytes, what: str) -> dict:
    if len(body) > MAX_DOCUMENT_BYTES:
        raise UnreadableDocument(f"{what} is larger than {MAX_DOCUMENT_BYTES // 1024 // 1024} MiB")
    try:
        return json_object(body, what)
    except BadResponse as error:  # not UTF-8, not JSON, too deep, not an object: said for a person
        raise UnreadableDocument(str(error)) from None


def _detail(value: Any) -> str:
    """A string of `details`: text only, no control characters, at most MAX_DETAIL characters."""
    if not isinstance(value, str):
        return ""
    return _CONTROLS.sub("", storable_text(value[: MAX_DETAIL * 2]))[:MAX_DETAIL].strip()
