"""Who signed a build, read offline: cosign signature layers, Sigstore bundles and signed attestations.

Three shapes carry a signature over an image digest:
- a cosign `.sig` layer: a simple-signing JSON payload naming the digest, with the base64
  signature, the Fulcio certificate (PEM), its chain and a Rekor bundle in the layer annotations;
- a Sigstore bundle (v0.1 to v0.3 protobuf-JSON), which cosign v3 attaches as a referrer: a
  message signature over the digest itself, or a DSSE envelope over an in-toto statement naming it;
- a cosign `.att` layer: a DSSE envelope, with the certificate in the layer annotations.

What is checked, and only this: the signature verifies over the signed bytes with the public key
of the certificate that comes with it, and the signed bytes name the digest. The certificate
chain, its validity period (Fulcio certificates live ten minutes, so an old signature's
certificate has always expired) and the Rekor entry are NOT checked: that needs Sigstore's trust
root, and tagledger fetches nothing beyond the registry. Every `detail` says so in stable words.

Everything here is pure and never raises on what a registry sends: a part that does not read
becomes a `Signature` whose detail says which part and why. The signer's identity and issuer are
read from the certificate as shown (controls removed, clipped), never trusted for anything.
"""

import unicodedata
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import ObjectIdentifier

from catalog.oci.errors import BadResponse
from catalog.oci.manifest import dict_or_empty, json_object
from history.sbom import UnreadableDocument
from history.statements import decode_base64, pae

SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_MEDIA_TYPES = (SIMPLE_SIGNING_MEDIA_TYPE,)
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
BUNDLE_MEDIA_TYPES = (
    BUNDLE_MEDIA_TYPE,
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
)
DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
IN_TOTO = "application/vnd.in-toto+json"

SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"

# Fulcio's OIDC issuer: .1 holds the raw UTF-8 bytes (deprecated), .8 a DER UTF8String. An
# identity that is neither an e-mail address nor a URI (a username) is an otherName of type .7.
ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
OTHER_NAME_USERNAME = ObjectIdentifier("1.3.6.1.4.1.57264.1.7")

#: A simple-signing payload is a few hundred bytes; a cosign payload with "optional" claims a few KiB.
MAX_PAYLOAD_BYTES = 1024 * 1024
#: A bundle or an `.att` envelope may carry a whole SBOM statement: the size callers fetch blobs with.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
#: A Fulcio leaf is ~1 KiB of PEM, a chain a few; a base64 signature under 1 KiB (RSA 4096: 700 B).
MAX_CERTIFICATE_CHARS = 64 * 1024
MAX_SIGNATURE_CHARS = 16 * 1024
MAX_REKOR_BUNDLE_CHARS = 1024 * 1024
#: Signatures tried on one DSSE envelope: one in practice.
MAX_ENVELOPE_SIGNATURES = 16
#: Every string stored in Attachment.details is at most this long.
MAX_TEXT = 1000

VERIFIES = "signature verifies with the certificate's key"
DOES_NOT_VERIFY = "signature does not verify with the certificate's key"
NOT_CHECKED = "signature not checked: "
NO_KEY = "signed with a key tagledger does not have; not verified"
REKOR_PRESENT = "Rekor bundle present, not verified"
REKOR_ABSENT = "no Rekor bundle"
REKOR_UNREADABLE = "Rekor bundle does not parse"
REKOR_NOT_READ = "Rekor bundle not read"
OFFLINE = (
    "certificate chain, validity period and Rekor inclusion not checked: no trust root is fetched (offline)"
)

_DIGEST_HASHES = {
    "SHA2_256": ("sha256", hashes.SHA256),
    "SHA2_384": ("sha384", hashes.SHA384),
    "SHA2_512": ("sha512", hashes.SHA512),
}
_CURVES = {
    "secp256r1": ("P-256", hashes.SHA256),
    "secp384r1": ("P-384", hashes.SHA384),
    "secp521r1": ("P-521", hashes.SHA512),
}


@dataclass(frozen=True)
class Signature:
    """One signature as read: who (from the certificate), and exactly what was checked.

    `verified` is `signature_valid is True and names_subject`: the signature verifies with the
    certificate's key and what it signs names this digest. Not that the certificate is trusted.
    """

    identity: str
    issuer: str
    verified: bool
    detail: str
    signature_valid: bool | None  # None: not checked (no certificate, or nothing to check it on)
    names_subject: bool
    rekor_bundle: bool
    key: str  # "ECDSA P-256", "RSA 2048", "Ed25519"; "" when there is no usable certificate

    def as_details(self) -> dict:
        """The `details` of a signature Attachment: every string at most MAX_TEXT characters."""
        details = asdict(self)
        for name, value in details.items():
            if isinstance(value, str):
                details[name] = _clean(value)
        return details


class _Unreadable(ValueError):
    """A part of a signature that does not read; its message is the clause the detail shows."""


@dataclass(frozen=True)
class _Certificate:
    key: Any  # a public key of a type `_check` knows, or None
    key_name: str
    identity: str
    issuer: str
    problem: str  # why the key cannot check anything, "" when it can


def read_simple_signing(payload: bytes, annotations: Mapping[str, str], subject: str) -> Signature:
    """A cosign `.sig` layer: `payload` is its blob, `annotations` its descriptor's annotations."""
    annotations = annotations if isinstance(annotations, Mapping) else {}
    certificate = _annotation_certificate(annotations)
    rekor = _rekor_annotation(annotations.get(BUNDLE_ANNOTATION))
    if not isinstance(payload, bytes):
        return _unreadable("the payload is not a document", certificate, rekor)
    if len(payload) > MAX_PAYLOAD_BYTES:
        return _unreadable(
            f"the payload is larger than {MAX_PAYLOAD_BYTES // 1024 // 1024} MiB", certificate, rekor
        )
    try:
        named = _simple_signing_digest(payload)
        subject_clause = _names(named, subject, "payload")
    except _Unreadable as error:
        named, subject_clause = None, str(error)
    try:
        signature = _base64(annotations.get(SIGNATURE_ANNOTATION), MAX_SIGNATURE_CHARS, "the signature")
    except _Unreadable as error:
        return _result(certificate, None, NOT_CHECKED + str(error), named == subject, subject_clause, rekor)
    valid, clause = _check(certificate, signature, payload)
    return _result(certificate, valid, clause, named == subject, subject_clause, rekor)


def read_bundle(body: bytes, subject: str) -> Signature:
    """A Sigstore bundle: a message signature over `subject`'s digest, or a DSSE envelope over an
    in-toto statement that lists `subject`; the key from its certificate (or chain's leaf)."""
    try:
        bundle = _json_object(body, MAX_DOCUMENT_BYTES, "the bundle")
        media_type = bundle.get("mediaType")
        if not isinstance(media_type, str) or not media_type.startswith(
            "application/vnd.dev.sigstore.bundle"
        ):
            raise _Unreadable("the document is not a Sigstore bundle (no Sigstore mediaType)")
    except _Unreadable as error:
        return _unreadable(str(error), None, REKOR_NOT_READ)
    material = dict_or_empty(bundle.get("verificationMaterial"))
    certificate = _bundle_certificate(material)
    rekor = _tlog_entries(material.get("tlogEntries"))
    if "messageSignature" in bundle:
        return _message_signature(dict_or_empty(bundle.get("messageSignature")), certificate, subject, rekor)
    if "dsseEnvelope" in bundle:
        return _envelope(bundle.get("dsseEnvelope"), certificate, subject, rekor)
    return _unreadable("the bundle holds neither a messageSignature nor a dsseEnvelope", certificate, rekor)


def read_signed_envelope(body: bytes, annotations: Mapping[str, str], subject: str) -> Signature:
    """A cosign `.att` layer: a DSSE envelope (its blob), signed with the certificate in the layer
    annotations. Says who signed the attestation and whether its statement lists `subject`."""
    annotations = annotations if isinstance(annotations, Mapping) else {}
    certificate = _annotation_certificate(annotations)
    rekor = _rekor_annotation(annotations.get(BUNDLE_ANNOTATION))
    try:
        envelope = _json_object(body, MAX_DOCUMENT_BYTES, "the envelope")
    except _Unreadable as error:
        return _unreadable(str(error), certificate, rekor)
    return _envelope(envelope, certificate, subject, rekor)


# --- the signed content -------------------------------------------------------------------------


def _simple_signing_digest(payload: bytes) -> str:
    document = _json_object(payload, MAX_PAYLOAD_BYTES, "the payload")
    image = dict_or_empty(dict_or_empty(document.get("critical")).get("image"))
    digest = image.get("docker-manifest-digest")
    if not isinstance(digest, str):
        raise _Unreadable("payload names no digest")
    return digest


def _names(named: str | None, subject: str, what: str) -> str:
    if named is None:
        return f"{what} names no digest"
    return f"{what} names this digest" if named == subject else f"{what} names another digest"


def _message_signature(
    content: dict, certificate: _Certificate | None, subject: str, rekor: str
) -> Signature:
    message = dict_or_empty(content.get("messageDigest"))
    name = message.get("algorithm")
    algorithm = _DIGEST_HASHES.get(name) if isinstance(name, str) else None
    subject_algorithm, _, subject_hex = subject.partition(":")
    try:
        digest = _base64(message.get("digest"), 1024, "the message digest")
        signature = _base64(content.get("signature"), MAX_SIGNATURE_CHARS, "the signature")
    except _Unreadable as error:
        return _result(certificate, None, NOT_CHECKED + str(error), False, "signed digest not read", rekor)
    if algorithm is None:
        return _result(
            certificate,
            None,
            NOT_CHECKED + "unknown digest algorithm",
            False,
            "signed digest not read",
            rekor,
        )
    names_subject = algorithm[0] == subject_algorithm and digest.hex() == subject_hex
    subject_clause = "signed digest is this digest" if names_subject else "signed digest is another digest"
    valid, clause = _check(certificate, signature, digest, prehashed=algorithm[1]())
    return _result(certificate, valid, clause, names_subject, subject_clause, rekor)


def _envelope(value: object, certificate: _Certificate | None, subject: str, rekor: str) -> Signature:
    """A DSSE envelope: valid when any of its signatures verifies over the PAE of its payload."""
    envelope = dict_or_empty(value)
    payload_type = envelope.get("payloadType")
    signatures = envelope.get("signatures")
    try:
        if not isinstance(payload_type, str):
            raise _Unreadable("the envelope has no payloadType")
        payload = _base64(envelope.get("payload"), 2 * MAX_DOCUMENT_BYTES, "the envelope payload")
    except _Unreadable as error:
        return _result(certificate, None, NOT_CHECKED + str(error), False, "statement not read", rekor)
    names_subject, subject_clause = _statement_names(payload_type, payload, subject)
    if not isinstance(signatures, list) or not signatures:
        return _result(
            certificate,
            None,
            NOT_CHECKED + "the envelope has no signatures",
            names_subject,
            subject_clause,
            rekor,
        )
    signed = pae(payload_type, payload)
    results: list[tuple[bool | None, str]] = []
    for entry in signatures[:MAX_ENVELOPE_SIGNATURES]:
        try:
            signature = _base64(dict_or_empty(entry).get("sig"), MAX_SIGNATURE_CHARS, "the signature")
        except _Unreadable as error:
            results.append((None, NOT_CHECKED + str(error)))
            continue
        results.append(_check(certificate, signature, signed))
        if results[-1][0]:
            break
    # The best result speaks: one verifying signature is enough, else a definite failure, else why not.
    valid, clause = max(results, key=lambda result: {True: 2, False: 1, None: 0}[result[0]])
    return _result(certificate, valid, clause, names_subject, subject_clause, rekor)


def _statement_names(payload_type: str, payload: bytes, subject: str) -> tuple[bool, str]:
    if payload_type != IN_TOTO:
        return False, "the payload is not an in-toto statement"
    try:
        statement = _json_object(payload, MAX_DOCUMENT_BYTES, "the statement")
    except _Unreadable as error:
        return False, str(error)
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects:
        return False, "statement names no digest"
    algorithm, _, hex_digest = subject.partition(":")
    named = [dict_or_empty(dict_or_empty(entry).get("digest")).get(algorithm) for entry in subjects]
    if hex_digest and hex_digest in named:
        return True, "statement names this digest"
    return False, "statement names another digest"


# --- certificates and keys ----------------------------------------------------------------------


def _annotation_certificate(annotations: Mapping[str, str]) -> _Certificate | None:
    """The leaf certificate of a cosign layer (the chain annotation holds only its issuers, and
    none of them is trusted here). None without one: the layer was signed with a key pair
    (`cosign sign --key`)."""
    pem = annotations.get(CERTIFICATE_ANNOTATION)
    if pem is None or pem == "":
        return None
    if not isinstance(pem, str) or len(pem) > MAX_CERTIFICATE_CHARS:
        return _broken("the certificate annotation is not a PEM certificate")
    try:
        return _certificate(x509.load_pem_x509_certificate(pem.encode("utf-8", "surrogatepass")))
    except ValueError:
        return _broken("the certificate does not parse")


def _bundle_certificate(material: dict) -> _Certificate | None:
    if "certificate" in material:  # v0.3: the leaf alone
        raw = dict_or_empty(material["certificate"]).get("rawBytes")
    elif "x509CertificateChain" in material:  # v0.1, v0.2: the leaf first
        chain = dict_or_empty(material["x509CertificateChain"]).get("certificates")
        raw = dict_or_empty(chain[0]).get("rawBytes") if isinstance(chain, list) and chain else None
    else:
        return None  # a publicKey hint, or nothing: a key tagledger does not have
    try:
        der = _base64(raw, MAX_CERTIFICATE_CHARS, "the certificate")
        return _certificate(x509.load_der_x509_certificate(der))
    except _Unreadable as error:
        return _broken(str(error))
    except ValueError:
        return _broken("the certificate does not parse")


def _broken(problem: str) -> _Certificate:
    return _Certificate(key=None, key_name="", identity="", issuer="", problem=problem)


def _certificate(certificate: x509.Certificate) -> _Certificate:
    """Key, identity and issuer of a parsed certificate, each read on its own: a malformed
    extension costs the identity, not the key (cryptography parses extensions lazily)."""
    try:
        extensions = certificate.extensions
    except ValueError:  # a duplicate or malformed extension
        extensions = x509.Extensions([])
    identity, issuer = _identity(extensions), _issuer(extensions)
    try:
        key = certificate.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return _Certificate(None, "", identity, issuer, "the certificate's public key does not parse")
    name = _key_name(key)
    if not name:
        return _Certificate(None, "", identity, issuer, f"unsupported key type ({_key_type(key)})")
    return _Certificate(key, name, identity, issuer, "")


def _key_name(key: object) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        curve = _CURVES.get(key.curve.name)
        return f"ECDSA {curve[0]}" if curve else ""
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    return ""  # DSA, X25519 and others: no Sigstore signer uses them


def _key_type(key: object) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ECDSA {key.curve.name}"
    return type(key).__name__.removesuffix("PublicKey").removeprefix("_")


def _identity(extensions: x509.Extensions) -> str:
    try:
        names = extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ""
    for name in names:
        if isinstance(name, x509.RFC822Name | x509.UniformResourceIdentifier | x509.DNSName):
            return _clean(name.value)
        if isinstance(name, x509.OtherName) and name.type_id == OTHER_NAME_USERNAME:
            return _clean(_der_utf8_string(name.value) or "")
    return ""


def _issuer(extensions: x509.Extensions) -> str:
    values = {extension.oid: extension.value for extension in extensions}
    v2, v1 = values.get(ISSUER_V2), values.get(ISSUER_V1)
    if isinstance(v2, x509.UnrecognizedExtension) and (text := _der_utf8_string(v2.value)) is not None:
        return _clean(text)
    if isinstance(v1, x509.UnrecognizedExtension):
        return _clean(v1.value.decode("utf-8", "replace"))
    return ""


def _der_utf8_string(der: bytes) -> str | None:
    """The text of a DER UTF8String (tag 12), or None when `der` is not exactly one."""
    if len(der) < 2 or der[0] != 0x0C:
        return None
    length, start = der[1], 2
    if length & 0x80:  # long form: the next (length & 0x7f) bytes hold the length
        width = length & 0x7F
        if not 1 <= width <= 4 or len(der) < 2 + width:
            return None
        length, start = int.from_bytes(der[2 : 2 + width], "big"), 2 + width
    if len(der) != start + length:
        return None
    return der[start:].decode("utf-8", "replace")


def _check(
    certificate: _Certificate | None,
    signature: bytes,
    data: bytes,
    prehashed: hashes.HashAlgorithm | None = None,
) -> tuple[bool | None, str]:
    """Whether `signature` verifies over `data` (a digest when `prehashed`) with the certificate's key."""
    if certificate is None:
        return None, NO_KEY
    if certificate.problem:
        return None, NOT_CHECKED + certificate.problem
    key = certificate.key
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            algorithm = Prehashed(prehashed) if prehashed else _CURVES[key.curve.name][1]()
            key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(key, rsa.RSAPublicKey):
            return _check_rsa(key, signature, data, prehashed)
        elif prehashed:
            return None, NOT_CHECKED + f"{certificate.key_name} cannot check a signature over a digest alone"
        else:
            key.verify(signature, data)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False, DOES_NOT_VERIFY
    return True, VERIFIES


def _check_rsa(
    key: rsa.RSAPublicKey, signature: bytes, data: bytes, prehashed: hashes.HashAlgorithm | None
) -> tuple[bool, str]:
    # Sigstore allows RSA with PKCS#1 v1.5 or PSS, both over SHA-256; the signature does not say which.
    algorithm = Prehashed(prehashed) if prehashed else hashes.SHA256()
    paddings = (padding.PKCS1v15(), padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.AUTO))
    for scheme in paddings:
        try:
            key.verify(signature, data, scheme, algorithm)
        except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
            continue
        return True, VERIFIES
    return False, DOES_NOT_VERIFY


# --- Rekor ----------------------------------------------------------------------------------------


def _rekor_annotation(value: object) -> str:
    """cosign's bundle annotation: {SignedEntryTimestamp, Payload{body, integratedTime, logIndex, logID}}."""
    if value is None or value == "":
        return REKOR_ABSENT
    if not isinstance(value, str) or len(value) > MAX_REKOR_BUNDLE_CHARS:
        return REKOR_UNREADABLE
    try:
        bundle = _json_object(
            value.encode("utf-8", "surrogatepass"), MAX_REKOR_BUNDLE_CHARS, "the Rekor bundle"
        )
    except _Unreadable:
        return REKOR_UNREADABLE
    payload = dict_or_empty(bundle.get("Payload"))
    shape = (
        isinstance(bundle.get("SignedEntryTimestamp"), str)
        and isinstance(payload.get("body"), str)
        and _is_integer(payload.get("integratedTime"))
        and _is_integer(payload.get("logIndex"))
        and isinstance(payload.get("logID"), str)
    )
    return REKOR_PRESENT if shape else REKOR_UNREADABLE


def _tlog_entries(value: object) -> str:
    """A bundle's transparency log entries: present when one has an index and a promise or proof."""
    if value is None or value == []:
        return REKOR_ABSENT
    if not isinstance(value, list):
        return REKOR_UNREADABLE
    for entry in value[:MAX_ENVELOPE_SIGNATURES]:
        entry = dict_or_empty(entry)
        index = entry.get("logIndex")
        evidence = isinstance(entry.get("inclusionPromise"), dict) or isinstance(
            entry.get("inclusionProof"), dict
        )
        if ((isinstance(index, str) and index.isdigit()) or _is_integer(index)) and evidence:
            return REKOR_PRESENT
    return REKOR_UNREADABLE


# --- results ------------------------------------------------------------------------------------


def _result(
    certificate: _Certificate | None,
    valid: bool | None,
    signature_clause: str,
    names_subject: bool,
    subject_clause: str,
    rekor: str,
) -> Signature:
    clauses = [signature_clause, subject_clause, rekor]
    if certificate is not None:  # without one, there is no chain or validity to leave unchecked
        clauses.append(OFFLINE)
    return Signature(
        identity=certificate.identity if certificate else "",
        issuer=certificate.issuer if certificate else "",
        verified=valid is True and names_subject,
        detail="; ".join(clauses),
        signature_valid=valid,
        names_subject=names_subject,
        rekor_bundle=rekor == REKOR_PRESENT,
        key=certificate.key_name if certificate else "",
    )


def _unreadable(reason: str, certificate: _Certificate | None, rekor: str) -> Signature:
    """Nothing signed could be read: who signed may still be known from the certificate."""
    return _result(certificate, None, NOT_CHECKED + reason, False, "digest not read", rekor)


# --- bounded reading ----------------------------------------------------------------------------


def _json_object(body: object, limit: int, what: str) -> dict:
    if not isinstance(body, bytes):
        raise _Unreadable(f"{what} is not a document")
    if len(body) > limit:
        raise _Unreadable(f"{what} is larger than {limit // 1024 // 1024} MiB")
    try:
        return json_object(body, what)  # UTF-8 only, depth bounded, NaN and Infinity read as None
    except BadResponse as error:
        raise _Unreadable(str(error)) from None


def _base64(value: object, limit: int, what: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise _Unreadable(f"{what} is missing")
    if len(value) > limit:
        raise _Unreadable(f"{what} is too large")
    try:
        return decode_base64(value.strip(), what)
    except UnreadableDocument as error:
        raise _Unreadable(str(error)) from None


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _clean(text: str) -> str:
    """`text` without control, format or surrogate characters (NUL, bidi overrides, lone halves),
    at most MAX_TEXT characters: stored in PostgreSQL and shown on pages as it is."""
    if text.isprintable() and len(text) <= MAX_TEXT:
        return text
    kept = (c for c in text if unicodedata.category(c) not in ("Cc", "Cf", "Cs"))
    return "".join(kept)[:MAX_TEXT]
