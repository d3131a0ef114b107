"""The platform's signing CA: a root, an issuing CA, the lessor's document-signing certificate, and one
short-lived certificate per customer signing event (事件证书).

Layout of the CA directory (development: ``$LEASELINE_VAR_DIR/signing``; production points at real files)::

    root-ca.crt      root certificate, 10 years        (the trust anchor that verifiers are given)
    root-ca.key      root key; only needed to make signing-ca.crt, keep it offline in production
    signing-ca.crt   issuing CA certificate, 5 years, pathLen 0
    signing-ca.key   issuing CA key: signs the event certificates
    lessor.crt       the lessor's document-signing certificate (its 电子公章), 3 years
    lessor.key       the lessor's key
    NotoSansCJKsc-Regular*.otf  the signature stamps' CJK font, two cuts (contract.signing.fonts)

Every file is written once with :func:`infra.keyfiles.create_once` (0600, published with ``link()``): two
processes starting at the same time end with one CA, because each step reads back the file that won and
builds the next step on it. A file that exists is never regenerated; a production directory that holds
``root-ca.crt`` but not ``root-ca.key`` is fine, the root key is only needed to issue ``signing-ca.crt``.

Keys are EC P-256 (ECDSA with SHA-256): a fresh key pair per signing event costs well under a millisecond,
where RSA-3072 generation takes tens to hundreds. Certificates: RFC 5280 profile built with
``cryptography`` (https://cryptography.io/en/latest/x509/reference/#x-509-certificate-builder).

Sole control (Electronic Signature Law art. 13(2): "签署时电子签名制作数据仅由电子签名人控制")
------------------------------------------------------------------------------------------------
A customer signing on a phone has no smart card and no key of their own. Chinese e-signature platforms
(e签宝, 法大大, 上上签, CFCA's 事件证书) therefore issue an *event certificate*: after the platform has
authenticated the person for this one event (real-name KYC, face match, SMS code), it generates a key pair
for that event, has it certified for the person's name and ID-number hash with a validity of minutes, signs
the one document the person has just confirmed, and destroys the key. :meth:`issue_event_certificate` does
that: the private key is generated in this process's memory, is returned only inside the :class:`Credential`
(whose ``repr`` leaves it out), and nothing in this package writes it to disk, a database or a log; the
caller signs once (:func:`contract.signing.pades.sign_lessee`) and drops the credential, and the
certificate expires within the event, so the key cannot serve for another document.

What that does and does not give: the binding between the person and the signature rests on the
platform's authentication of the person at the moment of signing (kept in the evidence log), not on the
person physically holding the key; the platform operator *could* in principle sign in someone's name while
the event runs, and Python cannot wipe the freed key memory (it lingers until overwritten). That is how
the Chinese platforms' 事件证书 work (the signer controls the signing act, the platform attests it), but it
is weaker than a key the signer holds (a UKey, a phone's secure element, or a cloud key unlocked by the
signer's own PIN), and whether it satisfies art. 13 in a dispute is a legal question, not a technical one.
For it to hold up, keep: the event's authentication evidence, the key generated only after that
authentication and used once, a CA licensed under art. 17 (电子认证服务许可) in production — this
development CA is NOT — and timestamps from a trusted TSA. Art. 13(3)-(4), "any later change to the
signature, or to the content and form of the document, can be detected", is what the PAdES signatures and
:func:`contract.signing.verify.verify_pdf` provide.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.oid import NameOID

from contract.signing.fonts import StampFonts
from contract.signing.fonts import prepare_stamp_fonts
from infra.keyfiles import create_once
from infra.paths import var_dir

UTC = dt.UTC

ROOT_VALIDITY = dt.timedelta(days=3652)
ISSUING_VALIDITY = dt.timedelta(days=1826)
LESSOR_VALIDITY = dt.timedelta(days=1095)
EVENT_VALIDITY = dt.timedelta(minutes=30)
#: certificates start this much before "now" so that a verifier or TSA whose clock is slightly behind
#: ours does not see a certificate that is not valid yet; counted inside the validity, not on top of it
CLOCK_SKEW = dt.timedelta(minutes=1)

#: id-kp-documentSigning (RFC 9336); emailProtection is what NSS (poppler's pdfsig) and Adobe look for
#: on a signer certificate (NSS's certUsageEmailSigner), so both are present
DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")

DEFAULT_LESSOR_NAME = "领航融资租赁有限公司"
DEFAULT_ORGANIZATION = "Leaseline"

# X.520 PrintableString: what serialNumber and dnQualifier may contain
_PRINTABLE = re.compile(r"[A-Za-z0-9 '()+,\-./:=?]{1,64}")


class CertificateAuthorityError(RuntimeError):
    """The CA directory is unusable: a certificate without its key, keys that do not match, bad input."""


@dataclass(frozen=True)
class Credential:
    """A private key with its certificate and the chain up to (and including) the root.

    For an event credential the key exists only in this object: do not persist it, sign once, drop it.
    """

    key: ec.EllipticCurvePrivateKey = field(repr=False)
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]

    @property
    def common_name(self) -> str:
        return _common_name(self.certificate)


#: a signing event's credential (:meth:`SigningAuthority.issue_event_certificate`): same shape as the lessor's
EventCredential = Credential


def default_directory() -> Path:
    """The development CA directory: ``$LEASELINE_VAR_DIR/signing`` (``./var/signing`` by default)."""
    return var_dir() / "signing"


def _now() -> dt.datetime:
    return dt.datetime.now(UTC)


def _common_name(cert: x509.Certificate) -> str:
    attrs = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else cert.subject.rfc4514_string()


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load_key(pem: bytes, path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateAuthorityError(f"{path}: expected an EC private key, got {type(key).__name__}")
    return key


def _load_cert(pem: bytes, path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise CertificateAuthorityError(f"{path}: not a PEM certificate ({exc})") from exc


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEFAULT_ORGANIZATION),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey,
             issuer_public_key: ec.EllipticCurvePublicKey, not_before: dt.datetime,
             not_after: dt.datetime) -> x509.CertificateBuilder:
    return (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key), critical=False))


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                         encipher_only=False, decipher_only=False)


def _signer_usage() -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                         encipher_only=False, decipher_only=False)


def _signer_extensions(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    return (builder
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_signer_usage(), critical=True)
            .add_extension(x509.ExtendedKeyUsage([DOCUMENT_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION]),
                           critical=False))


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


class SigningAuthority:
    """The platform CA: issues event certificates, holds the lessor's credential, names the trust roots.

    Thread-safe after construction (it only reads its keys). Build it once per process with
    :meth:`load_or_create` and keep it.
    """

    def __init__(self, directory: Path, root: x509.Certificate, issuing: Credential, lessor: Credential,
                 stamp_fonts: StampFonts) -> None:
        self.directory = directory
        self.root = root
        self._issuing = issuing
        self._lessor = lessor
        #: the CJK font files of the signature stamps (contract.signing.fonts), made in ``directory``
        self.stamp_fonts = stamp_fonts

    @classmethod
    def load_or_create(cls, directory: Path | str | None = None, *,
                       lessor_name: str = DEFAULT_LESSOR_NAME) -> SigningAuthority:
        """The CA in ``directory`` (default :func:`default_directory`), made there on first run.

        ``lessor_name`` is used only when the lessor certificate is made; an existing one is kept as is.
        """
        directory = Path(directory) if directory is not None else default_directory()
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        now = _now()

        root_cert_path = directory / "root-ca.crt"
        root_key: ec.EllipticCurvePrivateKey | None = None
        if not root_cert_path.exists():
            root_key = cls._key(directory / "root-ca.key", "root CA key")
            root_cert = _load_cert(create_once(root_cert_path, lambda: _pem(_make_root(root_key, now)),
                                               "root CA certificate"), root_cert_path)
        else:
            root_cert = _load_cert(root_cert_path.read_bytes(), root_cert_path)

        issuing_cert_path = directory / "signing-ca.crt"
        issuing_key = cls._key(directory / "signing-ca.key", "issuing CA key")
        if not issuing_cert_path.exists():
            if root_key is None:
                root_key = cls._existing_key(directory / "root-ca.key",
                                             "the root key is needed once, to issue signing-ca.crt")
            signer = root_key
            issuing_pem = create_once(issuing_cert_path,
                                      lambda: _pem(_make_issuing(issuing_key, root_cert, signer, now)),
                                      "issuing CA certificate")
        else:
            issuing_pem = issuing_cert_path.read_bytes()
        issuing_cert = _load_cert(issuing_pem, issuing_cert_path)
        _check_pair(issuing_key, issuing_cert, issuing_cert_path)
        issuing = Credential(issuing_key, issuing_cert, (issuing_cert, root_cert))

        lessor_key = cls._key(directory / "lessor.key", "lessor signing key")
        lessor_cert_path = directory / "lessor.crt"
        lessor_cert = _load_cert(
            create_once(lessor_cert_path, lambda: _pem(_make_lessor(lessor_key, lessor_name, issuing, now)),
                        "lessor certificate"), lessor_cert_path)
        _check_pair(lessor_key, lessor_cert, lessor_cert_path)
        lessor = Credential(lessor_key, lessor_cert, (lessor_cert, issuing_cert, root_cert))

        return cls(directory, root_cert, issuing, lessor, prepare_stamp_fonts(directory))

    @staticmethod
    def _key(path: Path, what: str) -> ec.EllipticCurvePrivateKey:
        return _load_key(create_once(path, lambda: _key_pem(_new_key()), what), path)

    @staticmethod
    def _existing_key(path: Path, why: str) -> ec.EllipticCurvePrivateKey:
        if not path.exists():
            raise CertificateAuthorityError(f"{path} is missing: {why}")
        return _load_key(path.read_bytes(), path)

    def issue_event_certificate(self, subject_name: str, id_number_hash: str, event_id: str,
                                valid_for: dt.timedelta = EVENT_VALIDITY, *,
                                now: Callable[[], dt.datetime] | dt.datetime | None = None) -> Credential:
        """A fresh key pair and a certificate for one signing event of one person.

        Subject: ``CN`` = ``subject_name`` (the name on the ID card), ``serialNumber`` = ``id_number_hash``
        (a keyed hash of the ID number, never the number), ``dnQualifier`` = ``event_id``; KeyUsage
        digitalSignature + nonRepudiation (critical), EKU documentSigning + emailProtection. The validity
        is ``valid_for`` in total, starting :data:`CLOCK_SKEW` before ``now`` (a datetime or a clock; for
        tests). Call it only after the person has been authenticated for this event, and keep the returned
        credential in memory only (see the module docstring).
        """
        if not subject_name.strip() or len(subject_name) > 64:
            raise CertificateAuthorityError("subject_name must be 1-64 characters")
        for label, value in (("id_number_hash", id_number_hash), ("event_id", event_id)):
            if not _PRINTABLE.fullmatch(value):
                raise CertificateAuthorityError(
                    f"{label} must be 1-64 characters of A-Z a-z 0-9 and ' ( ) + , - . / : = ? space")
        if valid_for <= CLOCK_SKEW:
            raise CertificateAuthorityError(f"valid_for must be longer than {CLOCK_SKEW}")
        moment = now() if callable(now) else (now or _now())
        not_before = moment - CLOCK_SKEW
        key = _new_key()
        subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                             x509.NameAttribute(NameOID.SERIAL_NUMBER, id_number_hash),
                             x509.NameAttribute(NameOID.DN_QUALIFIER, event_id),
                             x509.NameAttribute(NameOID.COMMON_NAME, subject_name.strip())])
        issuing = self._issuing
        builder = _builder(subject, issuing.certificate.subject, key.public_key(),
                           issuing.key.public_key(), not_before, not_before + valid_for)
        cert = _signer_extensions(builder).sign(issuing.key, hashes.SHA256())
        return Credential(key, cert, (cert, *issuing.chain))

    def lessor_credential(self) -> Credential:
        """The lessor's long-lived document-signing credential (certification and countersignature)."""
        return self._lessor

    def trust_roots(self) -> list[x509.Certificate]:
        """The root certificate(s) a verifier trusts for our signatures."""
        return [self.root]

    def fingerprint(self) -> str:
        """SHA-256 of the root certificate (hex), for logs and for pinning in the verifier's config."""
        return hashlib.sha256(self.root.public_bytes(serialization.Encoding.DER)).hexdigest()


#: the files of a CA directory; in production they come from the licensed CA and are never made here
CA_FILES = ("root-ca.crt", "signing-ca.crt", "signing-ca.key", "lessor.crt", "lessor.key")
DEVELOPMENT_ROOT_NAME = "Leaseline Root CA"


def require_licensed(directory: Path | str) -> None:
    """Production (issue 16 §7): the signing CA's files must be in ``directory`` already — a CA licensed under the
    Electronic Signature Law art. 17 (电子认证服务许可) issues them; nothing is generated — and must not be the
    development CA that :meth:`SigningAuthority.load_or_create` makes. Raises :class:`CertificateAuthorityError`."""
    directory = Path(directory)
    missing = [name for name in CA_FILES if not (directory / name).exists()]
    if missing:
        raise CertificateAuthorityError(
            f"{directory}: {', '.join(missing)} missing; in production the signing certificates come from a CA "
            "licensed under the Electronic Signature Law art. 17 and are never generated here")
    root_path = directory / "root-ca.crt"
    if _load_cert(root_path.read_bytes(), root_path).subject == _name(DEVELOPMENT_ROOT_NAME):
        raise CertificateAuthorityError(
            f"{root_path} is the development CA made by this software: in production use the certificates of a CA "
            "licensed under the Electronic Signature Law art. 17 (电子认证服务许可)")


def _make_root(key: ec.EllipticCurvePrivateKey, now: dt.datetime) -> x509.Certificate:
    name = _name(DEVELOPMENT_ROOT_NAME)
    not_before = now - CLOCK_SKEW
    return (_builder(name, name, key.public_key(), key.public_key(), not_before, not_before + ROOT_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(_ca_usage(), critical=True)
            .sign(key, hashes.SHA256()))


def _make_issuing(key: ec.EllipticCurvePrivateKey, root: x509.Certificate, root_key: ec.EllipticCurvePrivateKey,
                  now: dt.datetime) -> x509.Certificate:
    _check_pair(root_key, root, Path("root-ca.crt"))
    not_before = now - CLOCK_SKEW
    not_after = min(not_before + ISSUING_VALIDITY, root.not_valid_after_utc)
    return (_builder(_name("Leaseline Signing CA"), root.subject, key.public_key(), root_key.public_key(),
                     not_before, not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_ca_usage(), critical=True)
            .sign(root_key, hashes.SHA256()))


def _make_lessor(key: ec.EllipticCurvePrivateKey, lessor_name: str, issuing: Credential,
                 now: dt.datetime) -> x509.Certificate:
    not_before = now - CLOCK_SKEW
    not_after = min(not_before + LESSOR_VALIDITY, issuing.certificate.not_valid_after_utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, lessor_name),
                         x509.NameAttribute(NameOID.COMMON_NAME, lessor_name)])
    builder = _builder(subject, issuing.certificate.subject, key.public_key(), issuing.key.public_key(),
                       not_before, not_after)
    return _signer_extensions(builder).sign(issuing.key, hashes.SHA256())


def _check_pair(key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, path: Path) -> None:
    if cert.public_key() != key.public_key():
        raise CertificateAuthorityError(f"{path} does not belong to its key file")
