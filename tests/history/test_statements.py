"""What one supply-chain document says: in-toto statements bare or in DSSE envelopes, raw SBOMs and
scanners' reports, read into an Attachment's kind, subjects and details; every failure is an
UnreadableDocument saying why, and any bytes at all either read into bounded details (or an
envelope) or fail so."""

import base64
import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from history.sbom import Package, UnreadableDocument
from history.statements import (
    COSIGN_VULN,
    DSSE,
    IN_TOTO,
    MAX_DETAIL,
    MAX_DOCUMENT_BYTES,
    MAX_SUBJECTS,
    Contents,
    Envelope,
    kind_of,
    pae,
    parse_envelope,
    read_document,
)

CORPUS = Path(__file__).parent / "sboms"
DIGEST = "sha256:" + "e8275b2b76280af67e26f068e5d585eb905f8dfd2f1918b3229db98133cb4862"[:64]
COMMIT = "4b220de5058abfd01ff619c9d2ff6b09a049bea0"
BOUNDED = settings(
    max_examples=75, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def corpus(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def statement(predicate_type: str, predicate: object, **fields) -> dict:
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "image", "digest": {"sha256": DIGEST.removeprefix("sha256:")}}],
        "predicateType": predicate_type,
        "predicate": predicate,
        **fields,
    }


def read(document: object, media_type: str = IN_TOTO, predicate_type: str = "") -> Contents:
    return read_document(json.dumps(document).encode(), media_type, predicate_type)


def envelope(
    payload: bytes, encode=base64.standard_b64encode, payload_type: str = IN_TOTO, sig=b"sig"
) -> bytes:
    return json.dumps(
        {
            "payloadType": payload_type,
            "payload": encode(payload).decode(),
            "signatures": [{"keyid": "", "sig": base64.standard_b64encode(sig).decode()}],
        }
    ).encode()


# --- real statements and reports -----------------------------------------------------------------

BUILDKIT_V02 = {
    "builder": "https://github.com/docker/buildx/actions/runs/3709599520",
    "build_type": "https://mobyproject.org/buildkit@v1",
    "source_repository": "https://github.com/moby/buildkit.git",
    "source_commit": COMMIT,
    "started_at": "2021-11-17T15:00:00+00:00",
    "finished_at": "2021-11-17T15:01:00+00:00",
    "slsa": "v0.2",
}


@pytest.mark.parametrize(
    ("name", "kind", "predicate_type", "details"),
    [
        (
            "buildkit-provenance-v0.2.intoto.json",
            "provenance",
            "https://slsa.dev/provenance/v0.2",
            BUILDKIT_V02,
        ),
        (
            "buildkit-provenance-v1.intoto.json",
            "provenance",
            "https://slsa.dev/provenance/v1",
            # a local context: the repository and commit are the client's vcs hint
            BUILDKIT_V02
            | {
                "build_type": "https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md",
                "slsa": "v1",
            },
        ),
        (
            "buildkit-sbom.intoto.json",
            "sbom",
            "https://spdx.dev/Document",
            {"format": "SPDX 2.2", "tool": "syft-[not provided]", "package_count": 1},
        ),
        (
            "trivy-alpine-3.10.sarif.json",
            "vulnerabilities",
            "",
            {
                "scanner": "Trivy dev",
                "counts": {"critical": 0, "high": 0, "medium": 6, "low": 2, "unknown": 0},
                "total": 8,
            },
        ),
        (
            "trivy-alpine-3.10.trivy.json",
            "vulnerabilities",
            "",
            {
                "scanner": "Trivy",
                "counts": {"critical": 0, "high": 0, "medium": 4, "low": 0, "unknown": 0},
                "total": 4,
            },
        ),
        (
            "trivy-alpine-3.15.spdx.json",
            "sbom",
            "",
            {"format": "SPDX 2.3", "tool": "trivy-0.58.0", "package_count": 11},
        ),
        (
            "cyclonedx-spec-compositions-1.6.cdx.json",
            "sbom",
            "",
            {"format": "CycloneDX 1.6", "tool": "", "package_count": 3},
        ),
    ],
)
def test_real_documents_read_into_their_kind_and_details(name, kind, predicate_type, details):
    contents = read_document(corpus(name), "application/octet-stream")
    assert (contents.kind, contents.predicate_type, contents.details) == (kind, predicate_type, details)
    assert contents.subjects == ((DIGEST,) if predicate_type else ())


def test_an_sbom_statement_carries_its_packages():
    contents = read_document(corpus("buildkit-sbom.intoto.json"), IN_TOTO)
    assert contents.packages == (
        Package(
            "busybox",
            "1.35.0-r17",
            "alpine",
            "pkg:alpine/busybox@1.35.0-r17?arch=aarch64&distro=alpine-3.16.2&upstream=busybox",
        ),
    )


# --- DSSE envelopes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encode",
    [
        base64.standard_b64encode,
        base64.urlsafe_b64encode,
        lambda payload: base64.standard_b64encode(payload).rstrip(b"="),
        lambda payload: base64.urlsafe_b64encode(payload).rstrip(b"="),
        base64.encodebytes,  # line breaks every 76 characters, as some encoders write
    ],
    ids=["standard", "url-safe", "unpadded", "url-safe-unpadded", "wrapped"],
)
def test_an_envelope_reads_as_the_statement_it_carries(encode):
    payload = corpus("buildkit-provenance-v0.2.intoto.json")
    assert read_document(envelope(payload, encode), DSSE) == read_document(payload, IN_TOTO)


def test_parse_envelope_gives_payload_and_signatures_and_pae_is_dsse_s():
    payload = b'{"_type": "https://in-toto.io/Statement/v1"}'
    assert parse_envelope(envelope(payload, sig=b"\x30\x45")) == Envelope(IN_TOTO, payload, (b"\x30\x45",))
    # The DSSE specification's own example (protocol.md).
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert pae("t", "é".encode()) == b"DSSEv1 1 t 2 \xc3\xa9"  # lengths in bytes


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (envelope(b"{}", payload_type="application/vnd.cncf.notary.payload+json"), "payloadType is '"),
        (json.dumps({"payloadType": IN_TOTO, "payload": "not base64!"}).encode(), "payload is not base64"),
        (json.dumps({"payloadType": IN_TOTO, "payload": "QUJDRA=x"}).encode(), "payload is not base64"),
        (json.dumps({"payloadType": IN_TOTO, "payload": "é"}).encode(), "payload is not base64"),
        (json.dumps({"payloadType": IN_TOTO, "payload": 7}).encode(), "payload is not text"),
        (json.dumps({"payloadType": None, "payload": ""}).encode(), "payloadType is not text"),
        (envelope(b"not json"), "the envelope's payload is not valid JSON"),
        (envelope(b"[1]"), "the envelope's payload is not a JSON object"),
        (envelope(b'{"spdxVersion": "SPDX-2.3"}'), "the envelope's payload is not an in-toto statement"),
        (envelope(b"[" * 200 + b"]" * 200), "nests deeper than"),
    ],
)
def test_an_envelope_that_cannot_be_read_says_why(body, reason):
    with pytest.raises(UnreadableDocument, match=reason):
        read_document(body, DSSE)


@pytest.mark.parametrize(
    ("signatures", "reason"),
    [
        ("MEUC", "signatures are not a list"),
        ([{"sig": "%%%"}], "signature 1 is not base64"),
        ([{"sig": "MEUC"}, {"keyid": "k"}], "signature 2 has no sig"),
    ],
)
def test_parse_envelope_wants_every_signature_but_read_document_does_not(signatures, reason):
    payload = base64.b64encode(json.dumps(statement("https://example.com/test", {})).encode()).decode()
    body = json.dumps({"payloadType": IN_TOTO, "payload": payload, "signatures": signatures}).encode()
    with pytest.raises(UnreadableDocument, match=reason):
        parse_envelope(body)
    assert read_document(body, DSSE).kind == "attestation"


# --- statements ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("predicate_type", "kind"),
    [
        ("https://spdx.dev/Document", "sbom"),
        ("https://spdx.dev/Document/v2.3", "sbom"),
        ("https://cyclonedx.org/bom", "sbom"),
        ("https://cyclonedx.org/bom/v1.5", "sbom"),
        ("https://slsa.dev/provenance/v0.2", "provenance"),
        ("https://slsa.dev/provenance/v1", "provenance"),
        ("https://slsa.dev/provenance/v0.1", "provenance"),
        (COSIGN_VULN, "vulnerabilities"),
        ("https://in-toto.io/attestation/vulns/v0.1", "vulnerabilities"),
        ("https://openvex.dev/ns/v0.2.0", "attestation"),
        ("https://slsa.dev/verification_summary/v1", "attestation"),
        ("https://spdx.dev/Document-not", "attestation"),
    ],
)
def test_the_predicate_type_decides_the_kind(predicate_type, kind):
    assert kind_of(predicate_type) == kind


def test_another_predicate_is_an_attestation_with_no_details():
    assert read(statement("https://openvex.dev/ns/v0.2.0", {"statements": []})) == Contents(
        "attestation", "https://openvex.dev/ns/v0.2.0", (DIGEST,), {}
    )


def test_subjects_are_the_digests_named_once_each_and_bounded():
    sha512 = "sha512:" + "b" * 128
    subjects = [
        {"digest": {"sha256": DIGEST[7:]}},
        {"digest": {"sha256": DIGEST[7:], "sha512": sha512[7:]}},
        {"digest": {"sha256": "NOT HEX", "md5": "a" * 32, "sha1": "c" * 40}},
        {"digest": "sha256:" + "a" * 64},
        None,
    ]
    assert read(statement("https://x.test/p", {}, subject=subjects)).subjects == (DIGEST, sha512)
    many = [{"digest": {"sha256": f"{number:064x}"}} for number in range(MAX_SUBJECTS + 10)]
    assert len(read(statement("https://x.test/p", {}, subject=many)).subjects) == MAX_SUBJECTS


def test_a_statement_without_a_predicate_type_takes_the_layers_annotation():
    document = statement("", {}, predicateType=None)
    assert read(document, predicate_type="https://openvex.dev/ns").predicate_type == "https://openvex.dev/ns"
    with pytest.raises(UnreadableDocument, match="the statement has no predicateType"):
        read(document)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (
            statement("https://x.test/p", {}, _type="https://example.com/Statement"),
            "not an in-toto statement",
        ),
        ({"predicateType": "https://x.test/p", "subject": []}, "not an in-toto statement: _type is None"),
        (statement("not a uri", {}), "predicateType is no URI"),
        (statement("https://x.test/" + "p" * 300, {}), "predicateType is no URI"),
        (statement("https://slsa.dev/provenance/v1", "a string"), "predicate is not a JSON object"),
        (
            statement(COSIGN_VULN, {"scanner": {"uri": "x", "result": {"what": 1}}}),
            "neither SARIF, Trivy, Grype JSON nor a list",
        ),
        (statement("https://spdx.dev/Document", {"spdxVersion": "SPDX-3.0"}), "SPDX version 'SPDX-3.0'"),
        (statement("https://spdx.dev/Document", "SPDXVersion: SPDX-2.3"), "the SBOM is not a JSON object"),
    ],
)
def test_a_statement_that_cannot_be_read_says_why(document, reason):
    with pytest.raises(UnreadableDocument, match=reason):
        read(document)


# --- provenance ----------------------------------------------------------------------------------


def github_v1() -> dict:
    """A slsa-github-generator v1 predicate: the source is a resolved dependency with a gitCommit."""
    return {
        "buildDefinition": {
            "buildType": "https://actions.github.io/buildtypes/workflow/v1",
            "externalParameters": {
                "workflow": {"ref": "refs/heads/main", "repository": "https://github.com/o/r"}
            },
            "resolvedDependencies": [
                {"uri": "git+https://github.com/o/r@refs/heads/main", "digest": {"gitCommit": COMMIT}}
            ],
        },
        "runDetails": {
            "builder": {"id": "https://github.com/actions/runner/github-hosted"},
            "metadata": {"startedOn": "2024-05-01T10:00:00.5+02:00"},
        },
    }


def test_github_provenance_names_the_repository_without_its_ref():
    assert read(statement("https://slsa.dev/provenance/v1", github_v1())).details == {
        "builder": "https://github.com/actions/runner/github-hosted",
        "build_type": "https://actions.github.io/buildtypes/workflow/v1",
        "source_repository": "https://github.com/o/r",
        "source_commit": COMMIT,
        "started_at": "2024-05-01T08:00:00.500000+00:00",
        "finished_at": None,
        "slsa": "v1",
    }


@pytest.mark.parametrize(
    ("config_source", "vcs", "expected"),
    [
        (
            {"uri": "git+https://github.com/o/r@refs/tags/v1", "digest": {"sha1": COMMIT}},
            {},
            ("https://github.com/o/r", COMMIT),
        ),
        (
            {"uri": "https://user:token@github.com/o/r.git#main", "digest": {"sha1": COMMIT}},
            {},
            ("https://github.com/o/r.git", COMMIT),
        ),
        ({"uri": "https://example.com/context.tar.gz", "digest": {"sha256": "a" * 64}}, {}, ("", "")),
        (
            {"uri": "https://github.com/o/r", "digest": {"sha1": "not a commit"}},
            {"source": "https://github.com/o/v", "revision": COMMIT},
            ("https://github.com/o/v", COMMIT),
        ),
        (
            {"entryPoint": "Dockerfile"},
            {"source": "https://github.com/o/v", "revision": "main"},
            ("https://github.com/o/v", ""),
        ),
        ({"entryPoint": "Dockerfile"}, {"source": ["x"], "revision": 7}, ("", "")),
        ("not an object", "nor this", ("", "")),
    ],
)
def test_the_source_is_the_first_git_commit_then_buildkits_vcs_hint(config_source, vcs, expected):
    predicate = {
        "invocation": {"configSource": config_source},
        "metadata": {"https://mobyproject.org/buildkit@v1#metadata": {"vcs": vcs}},
    }
    details = read(statement("https://slsa.dev/provenance/v0.2", predicate)).details
    assert (details["source_repository"], details["source_commit"]) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2021-11-17T15:00:00Z", "2021-11-17T15:00:00+00:00"),
        ("0001-01-01T00:00:00Z", None),  # Go's zero time: not set
        ("yesterday", None),
        (1637161200, None),
        (None, None),
    ],
)
def test_build_times_are_utc_iso_or_none(value, expected):
    predicate = {"metadata": {"buildStartedOn": value, "buildFinishedOn": value}}
    details = read(statement("https://slsa.dev/provenance/v0.2", predicate)).details
    assert (details["started_at"], details["finished_at"]) == (expected, expected)


def test_provenance_of_wrong_types_everywhere_reads_as_empty_details():
    predicate = {"builder": ["x"], "buildType": 7, "invocation": "x", "metadata": [], "materials": {"uri": 1}}
    assert read(statement("https://slsa.dev/provenance/v0.2", predicate)).details == {
        "builder": "",
        "build_type": "",
        "source_repository": "",
        "source_commit": "",
        "started_at": None,
        "finished_at": None,
        "slsa": "v0.2",
    }


# --- vulnerabilities -----------------------------------------------------------------------------


def counts(critical=0, high=0, medium=0, low=0, unknown=0) -> dict:
    return {"critical": critical, "high": high, "medium": medium, "low": low, "unknown": unknown}


GRYPE = {
    "matches": [
        {"vulnerability": {"id": "CVE-1", "severity": severity}}
        for severity in ("Critical", "High", "High", "Medium", "Low", "Negligible", "Unknown", None)
    ],
    "descriptor": {"name": "grype", "version": "0.74.0"},
}


def test_grype_json_is_summarised_by_severity():
    assert read(GRYPE, "application/json").details == {
        "scanner": "grype 0.74.0",
        "counts": counts(1, 2, 1, 2, 2),
        "total": 8,
    }


def test_cosign_vuln_predicate_names_its_scanner_and_counts_its_result():
    trivy = json.loads(corpus("trivy-alpine-3.10.trivy.json"))
    predicate = {
        "invocation": {"uri": "", "event_id": ""},
        "scanner": {"uri": "pkg:github/aquasecurity/trivy@244fd47", "version": "0.29.0", "result": trivy},
        "metadata": {"scanStartedOn": "2022-07-07T09:35:00Z", "scanFinishedOn": "2022-07-07T09:35:10Z"},
    }
    contents = read(statement(COSIGN_VULN, predicate))
    assert (contents.kind, contents.predicate_type) == ("vulnerabilities", COSIGN_VULN)
    assert contents.details == {
        "scanner": "pkg:github/aquasecurity/trivy@244fd47 0.29.0",
        "counts": counts(medium=4),
        "total": 4,
    }
    predicate["scanner"] = {"result": GRYPE}
    assert read(statement(COSIGN_VULN, predicate)).details["scanner"] == "grype 0.74.0"


def test_in_toto_vulns_predicate_lists_each_vulnerability_with_its_scores():
    predicate = {
        "scanner": {
            "uri": "pkg:github/aquasecurity/trivy@244fd47e07d1004f0aed9",
            "version": "0.19.2",
            "result": [
                # the specification's example: a word and a number, the word says it
                {
                    "id": "CVE-123",
                    "severity": [
                        {"method": "nvd", "score": "medium"},
                        {"method": "cvss_score", "score": "5.2"},
                    ],
                },
                {"vulnerability": {"id": "CVE-2", "severity": [{"method": "cvss_score", "score": "9.1"}]}},
                {
                    "id": "CVE-3",
                    "severity": [{"method": "nvd", "score": "UNKNOWN"}, {"method": "x", "score": 7.5}],
                },
                {"id": "CVE-4"},
                "CVE-5",
            ],
        },
    }
    contents = read(statement("https://in-toto.io/attestation/vulns/v0.1", predicate))
    assert contents.details == {
        "scanner": "pkg:github/aquasecurity/trivy@244fd47e07d1004f0aed9 0.19.2",
        "counts": counts(critical=1, high=1, medium=1, unknown=2),
        "total": 5,
    }
    predicate["scanner"]["result"] = []  # the scanner found nothing
    assert read(statement("https://in-toto.io/attestation/vulns/v0.1", predicate)).details["total"] == 0


def sarif(rule_properties: dict, result: dict) -> dict:
    rule = {"id": "CVE-1", "properties": rule_properties}
    run = {
        "tool": {"driver": {"name": "scanner", "rules": [rule]}},
        "results": [{"ruleId": "CVE-1", **result}],
    }
    return {"version": "2.1.0", "runs": [run]}


@pytest.mark.parametrize(
    ("rule", "result", "severity"),
    [
        ({"security-severity": "9.8"}, {"level": "note"}, "critical"),  # the score wins over the level
        ({"security-severity": "9.0"}, {}, "critical"),
        ({"security-severity": "8.9"}, {}, "high"),
        ({"security-severity": 7}, {}, "high"),
        ({"security-severity": "4.0"}, {}, "medium"),
        ({"security-severity": "0.1"}, {}, "low"),
        ({"security-severity": "0.0"}, {}, "unknown"),
        ({"security-severity": "high"}, {"level": "error"}, "high"),  # no number: the level
        ({"security-severity": "NaN"}, {"level": "warning"}, "medium"),
        ({"security-severity": True}, {"level": "note"}, "low"),
        ({}, {"level": "none"}, "unknown"),
        ({}, {"level": ["error"]}, "unknown"),
        (
            {"security-severity": "2.0"},
            {"properties": {"security-severity": "9.1"}},
            "critical",
        ),  # the result's own
        ({"security-severity": "9.9"}, {"ruleId": ["CVE-1"]}, "unknown"),  # names no rule
    ],
)
def test_sarif_severity_is_the_cvss_score_else_the_level(rule, result, severity):
    details = read(sarif(rule, result), "application/sarif+json").details
    assert details == {"scanner": "scanner", "counts": counts(**{severity: 1}), "total": 1}


def test_sarif_rules_are_found_by_index_before_id():
    document = sarif({"security-severity": "9.5"}, {"ruleIndex": 0, "ruleId": "other"})
    assert read(document).details["counts"] == counts(critical=1)
    document["runs"][0]["results"][0]["ruleIndex"] = 5  # out of range: the id, which names none
    assert read(document).details["counts"] == counts(unknown=1)


# --- any bytes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xff\xfe{}", "the document is not UTF-8"),
        (b"{", "the document is not valid JSON"),
        (b"[]", "the document is not a JSON object"),
        (b'{"a": ' * 200 + b"1" + b"}" * 200, "nests deeper than"),
        (b'{"hello": "world"}', "a document of media type 'text/plain' that is neither"),
        (b" " * (MAX_DOCUMENT_BYTES + 1), "larger than 16 MiB"),
    ],
)
def test_a_document_that_cannot_be_read_says_why(body, reason):
    with pytest.raises(UnreadableDocument, match=reason):
        read_document(body, "text/plain")


TEXT = st.text(st.characters(exclude_categories=())) | st.text(st.sampled_from("\x00\ud800\n 9.z"))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)
PREDICATE_TYPES = st.sampled_from(
    [
        "https://spdx.dev/Document",
        "https://cyclonedx.org/bom",
        "https://slsa.dev/provenance/v0.2",
        "https://slsa.dev/provenance/v1",
        COSIGN_VULN,
        "https://openvex.dev/ns",
    ]
)
REPORT = st.fixed_dictionaries(
    {},
    optional={
        "runs": st.lists(
            st.fixed_dictionaries({"tool": JSON, "results": st.lists(JSON, max_size=3) | JSON}) | JSON
        ),
        "version": st.just("2.1.0") | JSON,
        "Results": JSON,
        "matches": JSON,
        "descriptor": JSON,
        "spdxVersion": JSON,
        "bomFormat": st.just("CycloneDX") | JSON,
    },
)
STATEMENTS = st.builds(
    lambda predicate_type, predicate, subject: statement(predicate_type, predicate, subject=subject),
    PREDICATE_TYPES | JSON,
    JSON
    | REPORT
    | st.fixed_dictionaries({"scanner": st.fixed_dictionaries({"uri": JSON, "result": REPORT | JSON})}),
    JSON,
)


def bodies(document) -> st.SearchStrategy[bytes]:
    raw = st.just(json.dumps(document).encode())
    return raw | raw.map(lambda body: envelope(body, base64.urlsafe_b64encode))


def respects_the_bounds(contents: Contents) -> None:
    assert contents.kind in ("sbom", "provenance", "vulnerabilities", "attestation")
    assert json.loads(json.dumps(contents.details)) == contents.details  # stores as JSON as it is
    texts = [value for value in contents.details.values() if isinstance(value, str)]
    for text in [*texts, contents.predicate_type, *contents.subjects]:
        assert len(text) <= MAX_DETAIL and "\x00" not in text
        text.encode("utf-8")
    if contents.kind == "vulnerabilities":
        assert contents.details["total"] == sum(contents.details["counts"].values())


@BOUNDED
@given(st.one_of(st.binary(max_size=64), (JSON | REPORT | STATEMENTS).flatmap(bodies)))
def test_any_bytes_read_into_bounded_details_or_fail_with_a_reason(body):
    with contextlib.suppress(UnreadableDocument):
        parsed = parse_envelope(body)
        assert isinstance(parsed.payload, bytes) and all(isinstance(sig, bytes) for sig in parsed.signatures)
    try:
        contents = read_document(body, "application/octet-stream")
    except UnreadableDocument as error:
        assert str(error)
        return
    respects_the_bounds(contents)
