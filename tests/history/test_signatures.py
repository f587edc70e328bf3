"""Signatures are read offline: who signed (from the certificate), whether the signature verifies with
that certificate's key over the signed bytes, whether those bytes name the build's digest, and a
detail that says exactly what was checked and what was not. Nothing a registry sends makes it raise.

Keys and certificates are real, made by `cryptography` through tests/support/sigstore.py (a
self-made Fulcio CA): ECDSA P-256 and P-384, RSA 2048 (PKCS#1 v1.5 and PSS) and Ed25519.
"""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Callable
from functools import cache

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, padding, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from history import signatures
from history.signatures import (
    BUNDLE_ANNOTATION,
    CERTIFICATE_ANNOTATION,
    MAX_TEXT,
    SIGNATURE_ANNOTATION,
    Signature,
    read_bundle,
    read_signed_envelope,
    read_simple_signing,
)
from tests.support import sigstore
from tests.support.sigstore import Signer, make_signer

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32
REFERENCE = "registry.example/acme/app"
IDENTITY = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
ISSUER = "https://token.actions.githubusercontent.com"
OFFLINE = (
    "certificate chain, validity period and Rekor inclusion not checked: no trust root is fetched (offline)"
)
VERIFIED = (
    "signature verifies with the certificate's key; payload names this digest; "
    "Rekor bundle present, not verified; " + OFFLINE
)
DETAILS_KEYS = {
    "identity",
    "issuer",
    "verified",
    "detail",
    "signature_valid",
    "names_subject",
    "rekor_bundle",
    "key",
}


@cache
def signer(kind: str) -> Signer:
    """One signer per key kind for the whole module: RSA 2048 takes a noticeable moment to make."""
    keys: dict[str, Callable] = {
        "P-256": lambda: ec.generate_private_key(ec.SECP256R1()),
        "P-384": lambda: ec.generate_private_key(ec.SECP384R1()),
        "RSA 2048": lambda: rsa.generate_private_key(65537, 2048),
        "Ed25519": ed25519.Ed25519PrivateKey.generate,
    }
    return make_signer(key=keys[kind]())


KINDS = ("P-256", "P-384", "RSA 2048", "Ed25519")
KEY_NAMES = {"P-256": "ECDSA P-256", "P-384": "ECDSA P-384", "RSA 2048": "RSA 2048", "Ed25519": "Ed25519"}


def cosign_layer(kind: str = "P-256", digest: str = DIGEST, **options) -> tuple[bytes, dict[str, str]]:
    payload = sigstore.simple_signing_payload(REFERENCE, digest)
    return payload, sigstore.cosign_signature_layer(signer(kind), payload, **options)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def assert_well_formed(signature: Signature) -> None:
    """What any result holds, however hostile its input: the stored shape, bounded and printable,
    and `verified` only when both checks passed."""
    details = signature.as_details()
    assert set(details) == DETAILS_KEYS
    json.dumps(details)  # JSON for Attachment.details
    for name in ("identity", "issuer", "detail", "key"):
        assert isinstance(details[name], str)
        assert len(details[name]) <= MAX_TEXT
        assert all(character.isprintable() or character == " " for character in details[name]), details[name]
    assert details["signature_valid"] in (True, False, None)
    assert details["verified"] == (details["signature_valid"] is True and details["names_subject"] is True)
    assert details["detail"]


class TestCosignSignatureLayer:
    @pytest.mark.parametrize("kind", KINDS)
    def test_a_keyless_signature_verifies_and_names_its_signer(self, kind):
        payload, annotations = cosign_layer(kind)

        signature = read_simple_signing(payload, annotations, DIGEST)

        assert signature == Signature(
            identity=IDENTITY,
            issuer=ISSUER,
            verified=True,
            detail=VERIFIED,
            signature_valid=True,
            names_subject=True,
            rekor_bundle=True,
            key=KEY_NAMES[kind],
        )
        assert signature.as_details() == {
            "identity": IDENTITY,
            "issuer": ISSUER,
            "verified": True,
            "detail": VERIFIED,
            "signature_valid": True,
            "names_subject": True,
            "rekor_bundle": True,
            "key": KEY_NAMES[kind],
        }

    def test_an_rsa_pss_signature_verifies(self):
        payload, annotations = cosign_layer("RSA 2048")
        key = signer("RSA 2048").key
        pss = padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.MAX_LENGTH)
        annotations[SIGNATURE_ANNOTATION] = b64(key.sign(payload, pss, hashes.SHA256()))

        assert read_simple_signing(payload, annotations, DIGEST).signature_valid is True

    def test_an_email_identity_is_the_signer(self):
        person = make_signer("dev@example.com", "https://accounts.google.com", email=True)
        payload = sigstore.simple_signing_payload(REFERENCE, DIGEST)

        signature = read_simple_signing(payload, sigstore.cosign_signature_layer(person, payload), DIGEST)

        assert (signature.identity, signature.issuer, signature.verified) == (
            "dev@example.com",
            "https://accounts.google.com",
            True,
        )

    @pytest.mark.parametrize(
        "extensions",
        [(sigstore.ISSUER_V1,), (sigstore.ISSUER_V2,), (sigstore.ISSUER_V1, sigstore.ISSUER_V2)],
        ids=["deprecated .1 only", ".8 only", "both"],
    )
    def test_the_issuer_is_read_from_either_extension(self, extensions):
        issuer = "https://issuer.example/" + "x" * 200  # past 127 bytes: DER's long length form
        certified = make_signer(issuer=issuer, issuer_extensions=extensions)
        payload = sigstore.simple_signing_payload(REFERENCE, DIGEST)

        signature = read_simple_signing(payload, sigstore.cosign_signature_layer(certified, payload), DIGEST)

        assert signature.issuer == issuer

    def test_a_certificate_without_issuer_extensions_has_no_issuer(self):
        certified = make_signer(issuer_extensions=())
        payload = sigstore.simple_signing_payload(REFERENCE, DIGEST)

        signature = read_simple_signing(payload, sigstore.cosign_signature_layer(certified, payload), DIGEST)

        assert (signature.issuer, signature.identity, signature.verified) == ("", IDENTITY, True)

    def test_a_username_identity_is_read_from_fulcios_other_name(self):
        other_name = x509.OtherName(signatures.OTHER_NAME_USERNAME, sigstore.der_utf8_string("jdoe"))
        certified = make_signer(san=other_name)
        payload = sigstore.simple_signing_payload(REFERENCE, DIGEST)

        signature = read_simple_signing(payload, sigstore.cosign_signature_layer(certified, payload), DIGEST)

        assert signature.identity == "jdoe"

    def test_an_expired_certificate_reads_as_any_other_and_says_its_time_is_not_checked(self):
        # Fulcio certificates live ten minutes: every signature older than that has an expired one.
        long_ago = datetime.datetime(2023, 5, 1, tzinfo=datetime.UTC)
        expired = make_signer(not_before=long_ago)
        payload = sigstore.simple_signing_payload(REFERENCE, DIGEST)

        signature = read_simple_signing(payload, sigstore.cosign_signature_layer(expired, payload), DIGEST)

        assert signature.verified is True
        assert "validity period" in signature.detail and "not checked" in signature.detail

    def test_a_tampered_payload_does_not_verify(self):
        payload, annotations = cosign_layer()
        tampered = payload.replace(b"acme/app", b"acme/evil")

        signature = read_simple_signing(tampered, annotations, DIGEST)

        assert (signature.signature_valid, signature.names_subject, signature.verified) == (
            False,
            True,
            False,
        )
        assert signature.detail.startswith(
            "signature does not verify with the certificate's key; payload names this digest; "
        )
        assert signature.identity == IDENTITY  # who claims to have signed is still shown

    def test_a_valid_signature_over_another_digest_is_not_verified_for_this_one(self):
        payload, annotations = cosign_layer(digest=OTHER)

        signature = read_simple_signing(payload, annotations, DIGEST)

        assert (signature.signature_valid, signature.names_subject, signature.verified) == (
            True,
            False,
            False,
        )
        assert "payload names another digest" in signature.detail

    def test_a_certificate_of_another_key_does_not_verify(self):
        payload, annotations = cosign_layer()
        annotations[CERTIFICATE_ANNOTATION] = make_signer("P-256").certificate_pem

        signature = read_simple_signing(payload, annotations, DIGEST)

        assert (signature.signature_valid, signature.verified) == (False, False)

    def test_a_signature_made_with_a_key_pair_is_not_verified_and_says_why(self):
        payload, annotations = cosign_layer(bundle=False)
        del annotations[CERTIFICATE_ANNOTATION], annotations[sigstore.CHAIN_ANNOTATION]

        signature = read_simple_signing(payload, annotations, DIGEST)

        assert signature == Signature(
            identity="",
            issuer="",
            verified=False,
            detail="signed with a key tagledger does not have; not verified; payload names this digest; "
            "no Rekor bundle",
            signature_valid=None,
            names_subject=True,
            rekor_bundle=False,
            key="",
        )

    def test_the_chain_alone_is_not_taken_for_the_signers_certificate(self):
        payload, annotations = cosign_layer()
        del annotations[CERTIFICATE_ANNOTATION]  # the chain holds the CA, not the signer

        signature = read_simple_signing(payload, annotations, DIGEST)

        assert (signature.identity, signature.signature_valid, signature.verified) == ("", None, False)

    def test_without_a_rekor_bundle_it_still_verifies_and_says_there_is_none(self):
        payload, annotations = cosign_layer(bundle=False)

        signature = read_simple_signing(payload, annotations, DIGEST)

        assert (signature.verified, signature.rekor_bundle) == (True, False)
        assert "; no Rekor bundle; " in signature.detail


def replace(key: str, value: object) -> Callable[[bytes, dict], tuple[bytes, dict]]:
    def mutate(payload: bytes, annotations: dict) -> tuple[bytes, dict]:
        if value is DELETE:
            annotations.pop(key)
        else:
            annotations[key] = value
        return payload, annotations

    return mutate


def with_payload(new: bytes) -> Callable[[bytes, dict], tuple[bytes, dict]]:
    return lambda payload, annotations: (new, annotations)


DELETE = object()
GARBAGE_SIGNATURE = b64(b"\x30\x06\x02\x01\x01\x02\x01\x01")  # DER, but not this payload's signature
PEM_OF_GARBAGE = (
    "-----BEGIN CERTIFICATE-----\n" + b64(b"not a certificate" * 8) + "\n-----END CERTIFICATE-----\n"
)
DEEP = "[" * 100_000 + "]" * 100_000


def with_certificate(make: Callable[[], str]) -> Callable[[bytes, dict], tuple[bytes, dict]]:
    return lambda payload, annotations: (payload, {**annotations, CERT: make()})


def dsa_certificate() -> str:
    key = dsa.generate_private_key(1024)  # noqa: S505 (only its type matters: no signer uses DSA)
    return make_signer(key=key).certificate_pem


def secp256k1_certificate() -> str:
    return make_signer(key=ec.generate_private_key(ec.SECP256K1())).certificate_pem


def cut_certificate() -> str:
    return signer("P-256").certificate_pem[:200] + "\n-----END CERTIFICATE-----\n"


def certificate_with_broken_san() -> str:
    """The signer's key, certified with a SAN whose value is no GeneralNames: cryptography raises
    on reading the extensions, which costs the identity and nothing else."""
    ca_key, ca = sigstore._ca()
    now = datetime.datetime.now(datetime.UTC)
    broken_san = x509.UnrecognizedExtension(x509.oid.ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x04\x00")
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca.subject)
        .public_key(signer("P-256").key.public_key())
        .serial_number(7)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(minutes=10))
        .add_extension(broken_san, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


SIG, CERT, REKOR = SIGNATURE_ANNOTATION, CERTIFICATE_ANNOTATION, BUNDLE_ANNOTATION
NO_PARSE = "the certificate does not parse"
NOT_PEM = "the certificate annotation is not a PEM certificate"
REKOR_BAD = "Rekor bundle does not parse"
WRONG_TYPES = json.dumps({"SignedEntryTimestamp": 1, "Payload": {"body": [], "logIndex": "1"}})
BOOLEAN_INDEX = json.dumps(
    {
        "SignedEntryTimestamp": "x",
        "Payload": {"body": "x", "integratedTime": True, "logIndex": True, "logID": "x"},
    }
)
HUGE_INTEGER = b'{"critical": {"image": {"docker-manifest-digest": ' + b"9" * 5000 + b"}}}"
TOO_BIG = b" " * (signatures.MAX_PAYLOAD_BYTES + 1)

# Each part of a cosign layer, broken in each way a registry can break it:
# mutation, then what reads: signature_valid, names_subject, rekor_bundle, a clause of the detail.
HOSTILE_LAYERS = {
    "signature missing": (replace(SIG, DELETE), None, True, True, "the signature is missing"),
    "signature empty": (replace(SIG, ""), None, True, True, "the signature is missing"),
    "signature not base64": (replace(SIG, "!!not base64!!"), None, True, True, "not base64"),
    "signature not ASCII": (replace(SIG, "é" * 8), None, True, True, "not base64"),
    "signature with NUL": (replace(SIG, "AAAA\x00"), None, True, True, "not base64"),
    "signature huge": (replace(SIG, "A" * 100_000), None, True, True, "too large"),
    "signature a number": (replace(SIG, 42), None, True, True, "the signature is missing"),
    "signature of other bytes": (replace(SIG, GARBAGE_SIGNATURE), False, True, True, "does not verify"),
    "signature random bytes": (replace(SIG, b64(bytes(range(256)))), False, True, True, "does not verify"),
    "certificate garbage": (replace(CERT, "not a PEM"), None, True, True, NO_PARSE),
    "certificate PEM of garbage": (replace(CERT, PEM_OF_GARBAGE), None, True, True, NO_PARSE),
    "certificate cut short": (with_certificate(cut_certificate), None, True, True, NO_PARSE),
    "certificate huge": (replace(CERT, "A" * 1_000_000), None, True, True, NOT_PEM),
    "certificate not text": (replace(CERT, ["-----BEGIN"]), None, True, True, NOT_PEM),
    "certificate of NULs": (replace(CERT, "\x00" * 10), None, True, True, NO_PARSE),
    "certificate, broken SAN": (with_certificate(certificate_with_broken_san), True, True, True, "verifies"),
    "certificate of a DSA key": (with_certificate(dsa_certificate), None, True, True, "key type (DSA)"),
    "certificate of a secp256k1 key": (
        with_certificate(secp256k1_certificate), None, True, True, "unsupported key type (ECDSA secp256k1)"
    ),
    "bundle not JSON": (replace(REKOR, "{nope"), True, True, False, REKOR_BAD),
    "bundle a list": (replace(REKOR, "[]"), True, True, False, REKOR_BAD),
    "bundle of wrong types": (replace(REKOR, WRONG_TYPES), True, True, False, REKOR_BAD),
    "bundle with boolean index": (replace(REKOR, BOOLEAN_INDEX), True, True, False, REKOR_BAD),
    "bundle nested deep": (replace(REKOR, DEEP), True, True, False, REKOR_BAD),
    "bundle huge": (replace(REKOR, " " * 2_000_000), True, True, False, REKOR_BAD),
    "bundle with NaN": (replace(REKOR, '{"SignedEntryTimestamp": NaN}'), True, True, False, REKOR_BAD),
    "bundle not text": (replace(REKOR, {"Payload": {}}), True, True, False, REKOR_BAD),
    "payload not JSON": (with_payload(b"{not json"), False, False, True, "the payload is not valid JSON"),
    "payload not UTF-8": (with_payload(b'{"a": "\xff\xfe"}'), False, False, True, "the payload is not UTF-8"),
    "payload a list": (with_payload(b"[]"), False, False, True, "the payload is not a JSON object"),
    "payload empty": (with_payload(b""), False, False, True, "the payload is not valid JSON"),
    "payload nested deep": (with_payload(DEEP.encode()), False, False, True, "the payload nests deeper than"),
    "payload critical a string": (with_payload(b'{"critical": "x"}'), False, False, True, "names no digest"),
    "payload digest a number": (
        with_payload(b'{"critical": {"image": {"docker-manifest-digest": 5}}}'), False, False, True,
        "payload names no digest",
    ),
    "payload digest huge integer": (with_payload(HUGE_INTEGER), False, False, True, "not valid JSON"),
    "payload larger than 1 MiB": (
        with_payload(TOO_BIG), None, False, True, "signature not checked: the payload is larger than 1 MiB"
    ),
    "payload not bytes": (with_payload("text"), None, False, True, "the payload is not a document"),
}  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "valid", "names", "rekor", "clause"), HOSTILE_LAYERS.values(), ids=HOSTILE_LAYERS
)
def test_a_broken_part_of_a_cosign_layer_fails_only_what_it_carries(mutate, valid, names, rekor, clause):
    payload, annotations = mutate(*cosign_layer())

    signature = read_simple_signing(payload, annotations, DIGEST)

    assert (signature.signature_valid, signature.names_subject, signature.rekor_bundle) == (
        valid,
        names,
        rekor,
    )
    assert clause in signature.detail
    assert_well_formed(signature)


def test_annotations_that_are_not_a_mapping_read_as_none():
    payload, _ = cosign_layer()

    signature = read_simple_signing(payload, None, DIGEST)  # type: ignore[arg-type]

    assert (signature.signature_valid, signature.verified) == (None, False)
    assert_well_formed(signature)


class TestHostileIdentity:
    def test_control_characters_are_removed_and_length_is_clipped(self):
        hostile = "https://x.example/" + "a" * 5000 + "\x00\u202e\x1b[31m"
        san = x509.UniformResourceIdentifier._init_without_validation(hostile)
        certified = make_signer(hostile, "https://issuer.example/\x00\x07" + "b" * 3000, san=san)
        payload = sigstore.simple_signing_payload(REFERENCE, DIGEST)

        signature = read_simple_signing(payload, sigstore.cosign_signature_layer(certified, payload), DIGEST)

        assert signature.identity == ("https://x.example/" + "a" * 5000)[:MAX_TEXT]
        assert signature.issuer == ("https://issuer.example/" + "b" * 3000)[:MAX_TEXT]
        assert signature.verified is True
        assert_well_formed(signature)

    def test_an_identity_of_non_ascii_bytes_reads_as_text(self):
        san = x509.UniformResourceIdentifier._init_without_validation("https://é.example/")
        certified = make_signer(san=san)
        payload = sigstore.simple_signing_payload(REFERENCE, DIGEST)

        signature = read_simple_signing(payload, sigstore.cosign_signature_layer(certified, payload), DIGEST)

        assert_well_formed(signature)
        assert signature.verified is True


# --- Sigstore bundles -----------------------------------------------------------------------------


def bundle(kind: str = "P-256", digest: str = DIGEST, **options) -> dict:
    return json.loads(sigstore.sigstore_bundle(signer(kind), digest, **options))


def encode(document: object) -> bytes:
    return json.dumps(document).encode()


def as_v01(document: dict) -> dict:
    """The same bundle as v0.1 writes it: the certificate as a chain, leaf first."""
    raw = document["verificationMaterial"].pop("certificate")["rawBytes"]
    ca = sigstore._ca()[1].public_bytes(serialization.Encoding.DER)
    document["verificationMaterial"]["x509CertificateChain"] = {
        "certificates": [{"rawBytes": raw}, {"rawBytes": b64(ca)}]
    }
    document["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.1"
    return document


class TestBundle:
    @pytest.mark.parametrize("kind", KINDS)
    def test_cosign_v3s_dsse_bundle_verifies_and_names_its_signer(self, kind):
        signature = read_bundle(sigstore.sigstore_bundle(signer(kind), DIGEST), DIGEST)

        assert signature == Signature(
            identity=IDENTITY,
            issuer=ISSUER,
            verified=True,
            detail="signature verifies with the certificate's key; statement names this digest; "
            "Rekor bundle present, not verified; " + OFFLINE,
            signature_valid=True,
            names_subject=True,
            rekor_bundle=True,
            key=KEY_NAMES[kind],
        )

    @pytest.mark.parametrize("kind", ["P-256", "P-384", "RSA 2048"])
    def test_a_message_signature_over_the_digest_verifies(self, kind):
        signature = read_bundle(encode(bundle(kind, message_signature=True)), DIGEST)

        assert (signature.verified, signature.key) == (True, KEY_NAMES[kind])
        assert signature.detail.startswith(
            "signature verifies with the certificate's key; signed digest is this digest; "
            "Rekor bundle present"
        )

    def test_a_v01_bundle_with_a_certificate_chain_reads_its_leaf(self):
        signature = read_bundle(encode(as_v01(bundle())), DIGEST)

        assert (signature.identity, signature.verified) == (IDENTITY, True)

    def test_a_v02_bundle_with_an_inclusion_promise_has_a_rekor_bundle(self):
        document = as_v01(bundle())
        document["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.2"
        assert "inclusionPromise" in document["verificationMaterial"]["tlogEntries"][0]

        assert read_bundle(encode(document), DIGEST).rekor_bundle is True

    def test_a_bundle_with_a_public_key_hint_is_not_verified(self):
        document = bundle()
        document["verificationMaterial"] = {"publicKey": {"hint": "abc"}}

        signature = read_bundle(encode(document), DIGEST)

        assert (
            signature.identity,
            signature.signature_valid,
            signature.verified,
            signature.rekor_bundle,
        ) == (
            "",
            None,
            False,
            False,
        )
        assert signature.detail == (
            "signed with a key tagledger does not have; not verified; statement names this digest; "
            "no Rekor bundle"
        )

    def test_a_statement_about_another_digest_is_not_verified_for_this_one(self):
        signature = read_bundle(sigstore.sigstore_bundle(signer("P-256"), OTHER), DIGEST)

        assert (signature.signature_valid, signature.names_subject, signature.verified) == (
            True,
            False,
            False,
        )
        assert "statement names another digest" in signature.detail

    def test_a_message_signature_over_another_digest_is_not_verified_for_this_one(self):
        signature = read_bundle(encode(bundle(digest=OTHER, message_signature=True)), DIGEST)

        assert (signature.signature_valid, signature.names_subject) == (True, False)
        assert "signed digest is another digest" in signature.detail

    def test_a_digest_of_another_algorithm_does_not_name_the_subject(self):
        document = bundle(message_signature=True)
        document["messageSignature"]["messageDigest"]["algorithm"] = "SHA2_384"

        signature = read_bundle(encode(document), DIGEST)

        assert (signature.names_subject, signature.verified) == (False, False)

    def test_a_statement_swapped_under_its_signature_does_not_verify(self):
        document = bundle()
        document["dsseEnvelope"]["payload"] = b64(
            sigstore.in_toto_statement(DIGEST, "https://example.com/other")
        )

        signature = read_bundle(encode(document), DIGEST)

        assert (signature.signature_valid, signature.names_subject, signature.verified) == (
            False,
            True,
            False,
        )

    def test_one_good_signature_among_bad_ones_verifies(self):
        document = bundle()
        good = document["dsseEnvelope"]["signatures"][0]
        document["dsseEnvelope"]["signatures"] = [{"sig": "!!"}, {"sig": GARBAGE_SIGNATURE}, "x", good]

        assert read_bundle(encode(document), DIGEST).verified is True

    def test_ed25519_cannot_check_a_message_signature_and_says_so(self):
        document = bundle(message_signature=True)
        ed = signer("Ed25519").certificate.public_bytes(serialization.Encoding.DER)
        document["verificationMaterial"]["certificate"]["rawBytes"] = b64(ed)

        signature = read_bundle(encode(document), DIGEST)

        assert (signature.signature_valid, signature.key) == (None, "Ed25519")
        assert "Ed25519 cannot check a signature over a digest alone" in signature.detail

    def test_url_safe_unpadded_base64_reads_as_protobuf_json_allows(self):
        document = bundle()
        envelope = document["dsseEnvelope"]
        envelope["payload"] = (
            base64.urlsafe_b64encode(base64.b64decode(envelope["payload"])).decode().rstrip("=")
        )

        assert read_bundle(encode(document), DIGEST).verified is True


def at(path: tuple, value: object) -> Callable[[dict], dict]:
    """Set (or with DELETE, remove) the value at `path` in a bundle."""

    def mutate(document: dict) -> dict:
        node = document
        for key in path[:-1]:
            node = node[key]
        if value is DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value
        return document

    return mutate


MATERIAL = ("verificationMaterial",)
RAW = (*MATERIAL, "certificate", "rawBytes")
TLOG = (*MATERIAL, "tlogEntries")
ENVELOPE = ("dsseEnvelope",)
NOT_BUNDLE = "not a Sigstore bundle"
NO_CERT = "the certificate is missing"
NO_PAYLOAD_TYPE = "the envelope has no payloadType"
NO_SIGNATURES = "the envelope has no signatures"
# mutation, then what reads: signature_valid, names_subject, rekor_bundle, a clause of the detail.
HOSTILE_BUNDLES = {
    "mediaType missing": (at(("mediaType",), DELETE), None, False, False, NOT_BUNDLE),
    "mediaType a number": (at(("mediaType",), 3), None, False, False, NOT_BUNDLE),
    "mediaType another": (at(("mediaType",), "application/json"), None, False, False, NOT_BUNDLE),
    "no content": (at(ENVELOPE, DELETE), None, False, True, "neither a messageSignature nor a dsseEnvelope"),
    "verificationMaterial a list": (at(MATERIAL, []), None, True, False, "a key tagledger does not have"),
    "certificate a string": (at((*MATERIAL, "certificate"), "x"), None, True, True, NO_CERT),
    "rawBytes not base64": (at(RAW, "@@"), None, True, True, "the certificate is not base64"),
    "rawBytes not DER": (at(RAW, b64(b"\x30\x03abc")), None, True, True, NO_PARSE),
    "rawBytes huge": (at(RAW, "A" * 200_000), None, True, True, "the certificate is too large"),
    "chain empty": (at(MATERIAL, {"x509CertificateChain": {"certificates": []}}), None, True, False, NO_CERT),
    "chain a string": (at(MATERIAL, {"x509CertificateChain": "x"}), None, True, False, NO_CERT),
    "tlogEntries a string": (at(TLOG, "x"), True, True, False, REKOR_BAD),
    "tlogEntries of wrong types": (at(TLOG, [1, None, {"logIndex": "x"}]), True, True, False, REKOR_BAD),
    "tlogEntries without evidence": (at(TLOG, [{"logIndex": "1"}]), True, True, False, REKOR_BAD),
    "tlogEntries empty": (at(TLOG, []), True, True, False, "no Rekor bundle"),
    "envelope a list": (at(ENVELOPE, []), None, False, True, NO_PAYLOAD_TYPE),
    "payload not base64": (at((*ENVELOPE, "payload"), "%%%"), None, False, True, "payload is not base64"),
    "payload not a statement": (
        at((*ENVELOPE, "payload"), b64(b"[1]")), False, False, True, "the statement is not a JSON object"
    ),
    "payload deep": (
        at((*ENVELOPE, "payload"), b64(DEEP.encode())), False, False, True, "statement nests deeper than 128"
    ),
    "payloadType another": (
        at((*ENVELOPE, "payloadType"), "text/plain"), False, False, True, "not an in-toto statement"
    ),
    "payloadType a number": (at((*ENVELOPE, "payloadType"), 1), None, False, True, NO_PAYLOAD_TYPE),
    "signatures empty": (at((*ENVELOPE, "signatures"), []), None, True, True, NO_SIGNATURES),
    "signatures an object": (at((*ENVELOPE, "signatures"), {"sig": "x"}), None, True, True, NO_SIGNATURES),
    "signatures not objects": (
        at((*ENVELOPE, "signatures"), [1, "x", None]), None, True, True, "the signature is missing"
    ),
    "sig not base64": (at((*ENVELOPE, "signatures", 0, "sig"), "!"), None, True, True, "is not base64"),
}  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "valid", "names", "rekor", "clause"), HOSTILE_BUNDLES.values(), ids=HOSTILE_BUNDLES
)
def test_a_broken_part_of_a_bundle_fails_only_what_it_carries(mutate, valid, names, rekor, clause):
    signature = read_bundle(encode(mutate(bundle())), DIGEST)

    assert (signature.signature_valid, signature.names_subject, signature.rekor_bundle) == (
        valid,
        names,
        rekor,
    )
    assert clause in signature.detail
    assert_well_formed(signature)


HOSTILE_MESSAGE_SIGNATURES = {
    "algorithm unknown": (("messageDigest", "algorithm"), "MD5", "unknown digest algorithm"),
    "algorithm a list": (("messageDigest", "algorithm"), ["SHA2_256"], "unknown digest algorithm"),
    "digest not base64": (("messageDigest", "digest"), "?", "the message digest is not base64"),
    "digest huge": (("messageDigest", "digest"), "A" * 5000, "the message digest is too large"),
    "messageDigest a number": (("messageDigest",), 1, "the message digest is missing"),
    "signature missing": (("signature",), DELETE, "the signature is missing"),
    "signature not base64": (("signature",), "***", "the signature is not base64"),
}


@pytest.mark.parametrize(
    ("path", "value", "clause"), HOSTILE_MESSAGE_SIGNATURES.values(), ids=HOSTILE_MESSAGE_SIGNATURES
)
def test_a_broken_message_signature_is_not_checked_and_says_why(path, value, clause):
    document = at(("messageSignature", *path), value)(bundle(message_signature=True))

    signature = read_bundle(encode(document), DIGEST)

    assert (signature.signature_valid, signature.verified) == (None, False)
    assert clause in signature.detail
    assert_well_formed(signature)


@pytest.mark.parametrize(
    ("body", "clause"),
    [
        (b"", "the bundle is not valid JSON"),
        (b"\xff\xfe{}", "the bundle is not UTF-8"),
        (b"null", "the bundle is not a JSON object"),
        (DEEP.encode(), "the bundle nests deeper than 128 levels"),
        (b" " * (signatures.MAX_DOCUMENT_BYTES + 1), "the bundle is larger than 16 MiB"),
        ("{}", "the bundle is not a document"),
    ],
    ids=["empty", "not UTF-8", "null", "deep", "larger than 16 MiB", "text"],
)
def test_a_bundle_that_does_not_parse_says_so(body, clause):
    signature = read_bundle(body, DIGEST)

    assert signature.detail == f"signature not checked: {clause}; digest not read; Rekor bundle not read"
    assert_well_formed(signature)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def paths(value: object, prefix: tuple = ()) -> list[tuple]:
    """Every path into a parsed JSON document (each key and index), the document itself first."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += paths(child, (*prefix, index))
    return found


BUNDLES = {
    "dsse": bundle,
    "message": lambda: bundle(message_signature=True),
    "v0.1": lambda: as_v01(bundle()),
}


def signed_content(document: dict) -> tuple:
    """What a bundle's signature covers, decoded: the statement and its type, or the digest."""
    if "dsseEnvelope" in document:
        envelope = document["dsseEnvelope"]
        return envelope["payloadType"], signatures._base64(envelope["payload"], 10**9, "payload")
    message = document["messageSignature"]["messageDigest"]
    return message["algorithm"], signatures._base64(message["digest"], 10**9, "digest")


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=st.sampled_from(sorted(BUNDLES)), data=st.data(), value=JSON)
def test_any_value_anywhere_in_a_bundle_reads_and_verifies_only_what_was_signed(shape, data, value):
    document = BUNDLES[shape]()
    original = signed_content(document)
    path = data.draw(st.sampled_from(paths(document)[1:]))

    signature = read_bundle(encode(at(path, value)(document)), DIGEST)

    assert_well_formed(signature)
    if signature.verified:
        assert signed_content(document) == original


ANNOTATION_VALUES = st.one_of(
    st.text(max_size=40), JSON.map(json.dumps), JSON, st.just("[" * 5000 + "]" * 5000)
)


@settings(max_examples=80, deadline=None, database=None)
@given(
    annotations=st.dictionaries(
        st.sampled_from([SIG, CERT, REKOR, sigstore.CHAIN_ANNOTATION]), ANNOTATION_VALUES
    ),
    payload=st.one_of(st.binary(max_size=64), JSON.map(lambda value: json.dumps(value).encode())),
)
def test_any_cosign_layer_reads_without_raising_and_unverified(annotations, payload):
    signature = read_simple_signing(payload, annotations, DIGEST)

    assert signature.verified is False
    assert_well_formed(signature)


@settings(max_examples=100, deadline=None, database=None)
@given(document=JSON)
def test_any_json_document_reads_as_an_unverified_bundle(document):
    signature = read_bundle(encode(document), DIGEST)

    assert signature.verified is False
    assert_well_formed(signature)


# --- cosign .att envelopes --------------------------------------------------------------------------


class TestSignedEnvelope:
    def test_an_attestation_layer_says_who_signed_it(self):
        statement = sigstore.in_toto_statement(
            DIGEST, "https://slsa.dev/provenance/v1", {"builder": {"id": "x"}}
        )
        body, annotations = sigstore.signed_envelope(signer("P-256"), statement)

        signature = read_signed_envelope(body, annotations, DIGEST)

        assert signature == Signature(
            identity=IDENTITY,
            issuer=ISSUER,
            verified=True,
            detail="signature verifies with the certificate's key; statement names this digest; "
            "Rekor bundle present, not verified; " + OFFLINE,
            signature_valid=True,
            names_subject=True,
            rekor_bundle=True,
            key="ECDSA P-256",
        )

    def test_an_attestation_about_another_digest_is_not_verified_for_this_one(self):
        body, annotations = sigstore.signed_envelope(signer("P-256"), sigstore.in_toto_statement(OTHER))

        signature = read_signed_envelope(body, annotations, DIGEST)

        assert (signature.signature_valid, signature.names_subject, signature.verified) == (
            True,
            False,
            False,
        )

    def test_an_attestation_signed_with_a_key_pair_is_not_verified(self):
        body, _ = sigstore.signed_envelope(signer("P-256"), sigstore.in_toto_statement(DIGEST))

        signature = read_signed_envelope(body, {SIGNATURE_ANNOTATION: ""}, DIGEST)

        assert signature.detail == (
            "signed with a key tagledger does not have; not verified; statement names this digest; "
            "no Rekor bundle"
        )

    def test_a_statement_listing_several_subjects_names_each(self):
        statement = json.loads(sigstore.in_toto_statement(OTHER))
        statement["subject"].append({"name": "x", "digest": {"sha256": DIGEST.partition(":")[2]}})
        body, annotations = sigstore.signed_envelope(signer("P-256"), json.dumps(statement).encode())

        assert read_signed_envelope(body, annotations, DIGEST).verified is True

    @pytest.mark.parametrize(
        ("body", "clause"),
        [
            (b"not json", "signature not checked: the envelope is not valid JSON"),
            (
                b'{"payloadType": "application/vnd.in-toto+json", "payload": "%%", "signatures": []}',
                "signature not checked: the envelope payload is not base64",
            ),
            (
                b'{"payload": "e30=", "signatures": []}',
                "signature not checked: the envelope has no payloadType",
            ),
        ],
        ids=["not JSON", "payload not base64", "no payloadType"],
    )
    def test_a_broken_envelope_says_what_broke(self, body, clause):
        _, annotations = sigstore.signed_envelope(signer("P-256"), sigstore.in_toto_statement(DIGEST))

        signature = read_signed_envelope(body, annotations, DIGEST)

        assert signature.detail.startswith(clause)
        assert signature.identity == IDENTITY  # the certificate still says who claims it
        assert_well_formed(signature)


def test_the_detail_reads_the_same_for_every_shape():
    """The README quotes these words: one wording for a verified signature, whatever carried it."""
    payload, annotations = cosign_layer()
    body, envelope_annotations = sigstore.signed_envelope(signer("P-256"), sigstore.in_toto_statement(DIGEST))
    details = {
        read_simple_signing(payload, annotations, DIGEST).detail,
        read_bundle(sigstore.sigstore_bundle(signer("P-256"), DIGEST), DIGEST).detail.replace(
            "statement", "payload"
        ),
        read_signed_envelope(body, envelope_annotations, DIGEST).detail.replace("statement", "payload"),
    }

    assert details == {VERIFIED}
