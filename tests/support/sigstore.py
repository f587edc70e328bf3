"""Sign images in tests the way cosign does, with keys and certificates made here by `cryptography`.

A self-made "Fulcio" CA issues short-lived leaf certificates carrying what the real one puts in
them (a SAN naming the signer, the OIDC issuer in extensions 1.3.6.1.4.1.57264.1.1 and .8), and a
self-made "Rekor" key signs the entry timestamps of bundles. Nothing here is trusted by anyone:
tagledger verifies offline and says so, so a signature from this CA reads exactly as a real one.

The shapes written are cosign's: a simple-signing payload and its `.sig` layer annotations, a
Sigstore bundle v0.3 (cosign v3's referrer), and a DSSE envelope for a `.att` layer.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from dataclasses import dataclass
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import NameOID, ObjectIdentifier

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"
BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
IN_TOTO = "application/vnd.in-toto+json"
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"

SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"

ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")  # the OIDC issuer as raw UTF-8 (deprecated)
ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")  # the same as a DER UTF8String

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True)
class Signer:
    """A key and the certificate the test CA issued for it, naming `identity` and `issuer`."""

    key: SigningKey
    certificate: x509.Certificate
    identity: str
    issuer: str

    @property
    def certificate_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()


@cache
def _ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    # One CA per test process: making it costs a key and a signature, and nothing depends on it
    # being fresh (tagledger fetches no trust root, so it never checks the chain).
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tagledger tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, "sigstore-intermediate"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA384())
    )
    return key, certificate


@cache
def _rekor_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def ca_certificate_pem() -> str:
    """The test CA's certificate: what cosign writes as the chain annotation."""
    return _ca()[1].public_bytes(serialization.Encoding.PEM).decode()


def der_utf8_string(text: str) -> bytes:
    """A DER UTF8String (tag 12), with the long length form past 127 bytes."""
    data = text.encode()
    if len(data) < 0x80:
        return bytes([0x0C, len(data)]) + data
    length = len(data).to_bytes((len(data).bit_length() + 7) // 8, "big")
    return bytes([0x0C, 0x80 | len(length)]) + length + data


def make_signer(
    identity: str = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main",
    issuer: str = "https://token.actions.githubusercontent.com",
    *,
    email: bool = False,
    key: SigningKey | None = None,
    lifetime: datetime.timedelta = datetime.timedelta(minutes=10),
    not_before: datetime.datetime | None = None,
    san: x509.GeneralName | None = None,
    issuer_extensions: tuple[ObjectIdentifier, ...] = (ISSUER_V1, ISSUER_V2),
) -> Signer:
    """A leaf certificate as Fulcio issues one: no subject, a critical SAN (an e-mail address when
    `email`, else a URI), both OIDC issuer extensions, ten minutes of life by default. `key` is a
    fresh ECDSA P-256 key unless given (RSA and Ed25519 keys are signed for the same way). `san`
    replaces the SAN (an otherName, a hostile value); `issuer_extensions` says which issuer
    extensions to write."""
    ca_key, ca_certificate = _ca()
    key = key if key is not None else ec.generate_private_key(ec.SECP256R1())
    start = not_before or datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=30)
    if san is None:
        san = x509.RFC822Name(identity) if email else x509.UniformResourceIdentifier(identity)
    issuer_values = {ISSUER_V1: issuer.encode(), ISSUER_V2: der_utf8_string(issuer)}
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + lifetime)
        .add_extension(x509.SubjectAlternativeName([san]), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
    )
    for oid in issuer_extensions:
        builder = builder.add_extension(x509.UnrecognizedExtension(oid, issuer_values[oid]), critical=False)
    certificate = builder.sign(ca_key, hashes.SHA256())
    return Signer(key=key, certificate=certificate, identity=identity, issuer=issuer)


def sign(key: SigningKey, data: bytes) -> bytes:
    """Sign as Sigstore clients do: ECDSA with the curve's hash, RSA PKCS#1 v1.5 SHA-256, Ed25519."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        digest = {384: hashes.SHA384(), 521: hashes.SHA512()}.get(key.curve.key_size, hashes.SHA256())
        return key.sign(data, ec.ECDSA(digest))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(data)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _compact(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def simple_signing_payload(reference: str, digest: str) -> bytes:
    """The payload `cosign sign` signs: it names the image by repository and manifest digest."""
    return json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        },
        separators=(",", ":"),
    ).encode()


def in_toto_statement(digest: str, predicate_type: str = COSIGN_SIGN_PREDICATE, predicate=None) -> bytes:
    """An in-toto v1 statement whose one subject is `digest` ("sha256:<hex>")."""
    algorithm, _, hex_digest = digest.partition(":")
    return _compact(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "image", "digest": {algorithm: hex_digest}}],
            "predicateType": predicate_type,
            "predicate": predicate if predicate is not None else {},
        }
    )


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what a DSSE signature is made over."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _rekor_entry(kind: str, body: dict) -> dict:
    """A transparency log entry as Rekor returns it, its timestamp signed by the test log key."""
    key = _rekor_key()
    log_id = hashlib.sha256(
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).hexdigest()
    canonical = _b64(_compact(body))
    payload = {"body": canonical, "integratedTime": 1764561600, "logIndex": 4242, "logID": log_id}
    timestamp = key.sign(_compact(payload), ec.ECDSA(hashes.SHA256()))
    return {"kind": kind, "payload": payload, "set": _b64(timestamp), "log_id": log_id}


def _rekor_bundle(signer: Signer, signature: bytes, data: bytes) -> str:
    """cosign's `dev.sigstore.cosign/bundle` annotation: the hashedrekord entry of this signature."""
    entry = _rekor_entry(
        "hashedrekord",
        {
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": hashlib.sha256(data).hexdigest()}},
                "signature": {
                    "content": _b64(signature),
                    "publicKey": {"content": _b64(signer.certificate_pem.encode())},
                },
            },
        },
    )
    return json.dumps({"SignedEntryTimestamp": entry["set"], "Payload": entry["payload"]})


def cosign_signature_layer(signer: Signer, payload: bytes, *, bundle: bool = True) -> dict[str, str]:
    """The annotations cosign writes on a `.sig` layer whose blob is `payload`."""
    signature = sign(signer.key, payload)
    annotations = {
        SIGNATURE_ANNOTATION: _b64(signature),
        CERTIFICATE_ANNOTATION: signer.certificate_pem,
        CHAIN_ANNOTATION: ca_certificate_pem(),
    }
    if bundle:
        annotations[BUNDLE_ANNOTATION] = _rekor_bundle(signer, signature, payload)
    return annotations


def _tlog_entry(kind: str, body: dict) -> dict:
    entry = _rekor_entry(kind, body)
    return {
        "logIndex": str(entry["payload"]["logIndex"]),
        "logId": {"keyId": _b64(bytes.fromhex(entry["log_id"]))},
        "kindVersion": {"kind": kind, "version": "0.0.1"},
        "integratedTime": str(entry["payload"]["integratedTime"]),
        "inclusionPromise": {"signedEntryTimestamp": entry["set"]},
        "canonicalizedBody": entry["payload"]["body"],
    }


def sigstore_bundle(signer: Signer, digest: str, *, message_signature: bool = False) -> bytes:
    """A Sigstore bundle v0.3 as cosign v3 attaches to an image through the referrers API: a DSSE
    envelope over an in-toto statement naming `digest` (predicate https://sigstore.dev/cosign/sign/v1),
    or with `message_signature` a signature over the digest itself; one transparency log entry."""
    certificate = {"rawBytes": _b64(signer.certificate.public_bytes(serialization.Encoding.DER))}
    verification = {"certificate": certificate}
    if message_signature:
        hex_digest = digest.partition(":")[2]
        signature = _sign_prehashed(signer.key, bytes.fromhex(hex_digest))
        content = {
            "messageSignature": {
                "messageDigest": {"algorithm": "SHA2_256", "digest": _b64(bytes.fromhex(hex_digest))},
                "signature": _b64(signature),
            }
        }
        body = {
            "kind": "hashedrekord",
            "spec": {"data": {"hash": {"algorithm": "sha256", "value": hex_digest}}},
        }
        verification["tlogEntries"] = [_tlog_entry("hashedrekord", body)]
    else:
        statement = in_toto_statement(digest)
        envelope = _envelope(signer, statement)
        content = {"dsseEnvelope": envelope}
        body = {"kind": "dsse", "spec": {"payloadHash": hashlib.sha256(statement).hexdigest()}}
        verification["tlogEntries"] = [_tlog_entry("dsse", body)]
    return json.dumps({"mediaType": BUNDLE_V03, "verificationMaterial": verification, **content}).encode()


def _sign_prehashed(key: SigningKey, sha256_digest: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(sha256_digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(sha256_digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
    raise ValueError("Ed25519 cannot sign a prehashed digest")


def _envelope(signer: Signer, statement: bytes) -> dict:
    signature = sign(signer.key, pae(IN_TOTO, statement))
    return {
        "payload": _b64(statement),
        "payloadType": IN_TOTO,
        "signatures": [{"sig": _b64(signature), "keyid": ""}],
    }


def signed_envelope(signer: Signer, statement: bytes) -> tuple[bytes, dict[str, str]]:
    """A cosign `.att` layer: the DSSE envelope (its blob) and the annotations cosign writes on it
    (an empty signature annotation, the certificate, the chain, the Rekor bundle, the predicate type)."""
    envelope = _envelope(signer, statement)
    body = json.dumps(envelope).encode()
    signature = base64.b64decode(envelope["signatures"][0]["sig"])
    annotations = {
        SIGNATURE_ANNOTATION: "",
        CERTIFICATE_ANNOTATION: signer.certificate_pem,
        CHAIN_ANNOTATION: ca_certificate_pem(),
        BUNDLE_ANNOTATION: _rekor_bundle(signer, signature, body),
    }
    try:
        predicate_type = json.loads(statement).get("predicateType")
    except (ValueError, AttributeError):
        predicate_type = None
    if isinstance(predicate_type, str):
        annotations["predicateType"] = predicate_type
    return body, annotations
