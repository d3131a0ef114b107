"""Validate every signature of a signed contract, offline, with pyHanko; one report per signature.

What is checked for each signature (pyHanko's ``validate_pdf_signature``,
https://pyhanko.readthedocs.io/en/latest/lib-guide/validation.html):

* **intact** — the digest of the signed byte range equals the one that was signed (one changed byte → False);
* **valid** — the signature value verifies under the certificate's public key;
* **trusted** — the certificate chains to ``trust_roots`` and is within its validity, key usage
  nonRepudiation present (pyHanko's default for signers), at the validation time;
* **coverage** and **modification level** — what later incremental updates did (pyHanko's difference
  analysis), and **docmdp_ok**: whether that is within what the certification signature (DocMDP P=2: fill
  forms and sign) allows;
* the RFC 3161 **timestamp** when present (PAdES B-T): intact, valid, trusted against ``tsa_roots`` (a TSA
  certificate needs the timeStamping EKU);
* **bottom_line** — pyHanko's overall judgement: all of the above.

Expired certificates. pyHanko's ``validate_pdf_signature`` checks the signer's chain at the validation time
only, timestamp or not: an event certificate valid for 30 minutes makes every customer signature
"untrusted" (``trust_problem_indic`` OUT_OF_BOUNDS_NO_POE) half an hour after signing. When that happens and
the signature carries a trusted timestamp whose time falls inside the certificate's validity, this module
validates the chain again *at the timestamp's time* (``ValidationContext(moment=...)``: point-in-time
validation, the timestamp being the proof of existence; ETSI EN 319 102-1 §5.5 "validation with time"),
and reports ``validated_at`` = that time. Without a timestamp (PAdES B-B) an expired certificate stays
untrusted: the signingTime attribute is the signer's own claim.

Revocation: nothing is fetched (``allow_fetching=False``). Our development CA publishes no CRL or OCSP and
its certificates declare none, so with the default ``revocation_mode="soft-fail"`` no revocation check
happens at all; event certificates live 30 minutes (a short-lived certificate needs none). For the lessor's
long-lived certificate in production, pass the CA's CRLs/OCSP responses (``crls``/``ocsps``) and
``revocation_mode="hard-fail"`` or ``"require"``, or embed them at signing (PAdES B-LT).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.fields import enumerate_sig_fields
from pyhanko.sign.validation import EmbeddedPdfSignature
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation import validate_pdf_timestamp
from pyhanko.sign.validation.status import PdfSignatureStatus
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from contract.signing.asyncio_bridge import outside_event_loop
from contract.signing.errors import NoSignatures
from contract.signing.errors import NotAPdf

log = logging.getLogger(__name__)

CHINA_TIME = dt.timezone(dt.timedelta(hours=8), "CST")

CertificateLike = x509.Certificate | asn1_x509.Certificate | bytes

_COVERAGE = {SignatureCoverageLevel.ENTIRE_FILE: "entire_file",
             SignatureCoverageLevel.ENTIRE_REVISION: "entire_revision",
             SignatureCoverageLevel.CONTIGUOUS_BLOCK_FROM_START: "contiguous_block",
             SignatureCoverageLevel.UNCLEAR: "unclear"}

_PROBLEMS = {
    "unreadable": ("the signature cannot be read", "签名数据无法解析"),
    "digest_mismatch": ("the signed content was altered after signing (digest mismatch)",
                        "签署后内容被篡改（摘要不符）"),
    "signature_invalid": ("the signature value does not verify", "签名值验证失败"),
    "certificate_expired": ("the signer's certificate was not valid at the validation time and no trusted "
                            "timestamp proves it was signed while the certificate was valid",
                            "签名证书在验证时不在有效期内，且无可信时间戳证明签署时证书有效"),
    "untrusted_certificate": ("the signer's certificate does not chain to a trusted root",
                              "签名证书不是由受信任的证书机构签发"),
    "timestamp_untrusted": ("the timestamp is not valid or not from a trusted TSA",
                            "时间戳无效或不是由受信任的时间戳机构签发"),
    "timestamp_before_certificate": ("the timestamp predates the signer's certificate: the signature existed "
                                     "before its certificate was issued",
                                     "时间戳早于签名证书的生效时间（签名先于证书存在）"),
    "illegal_modifications": ("the document was changed afterwards in a way the signature does not permit",
                              "签署后对文件的修改超出签名（认证）允许的范围"),
    "coverage": ("the signature does not cover its whole revision", "签名未覆盖其完整修订版本"),
    "seed_values": ("the signature violates its field's constraints", "签名不符合签名域的约束"),
}


@dataclass(frozen=True)
class SignatureReport:
    """The validation of one embedded signature (times are aware datetimes, UTC unless stated)."""

    field_name: str
    kind: str  #: "signature" or "document_timestamp"
    revision: int  #: the revision (0-based) the signature belongs to
    signer_common_name: str
    signer_subject: str
    signing_time: dt.datetime | None  #: the signingTime signed attribute (the signer's own claim)
    timestamp_time: dt.datetime | None  #: genTime of the RFC 3161 token, when present (PAdES B-T)
    tsa: str | None  #: common name of the TSA certificate
    timestamp_trusted: bool | None
    intact: bool
    valid: bool
    trusted: bool
    #: pyHanko's overall judgement of the validation that was kept, and False too for a timestamp that
    #: predates the certificate (a check pyHanko's basic validation does not make)
    bottom_line: bool
    validated_at: dt.datetime | None  #: when the signer's chain was judged: validation time or timestamp time
    coverage: str  #: entire_file / entire_revision / contiguous_block / unclear
    modification_level: str | None  #: none / lta_updates / form_filling / annotations / other
    docmdp_ok: bool | None
    certified: bool  #: the certification (author) signature of the document
    docmdp_permission: str | None  #: for the certification signature: no_changes / fill_forms / annotate
    problems: tuple[str, ...]
    summary_en: str
    summary_zh: str
    pyhanko_summary: str  #: pyHanko's machine-readable summary, e.g. "INTACT:TRUSTED,UNTOUCHED"


def _asn1(cert: CertificateLike) -> asn1_x509.Certificate:
    if isinstance(cert, asn1_x509.Certificate):
        return cert
    if isinstance(cert, x509.Certificate):
        return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    if isinstance(cert, bytes | bytearray):
        data = bytes(cert)
        if data.lstrip().startswith(b"-----BEGIN"):
            data = x509.load_pem_x509_certificate(data).public_bytes(serialization.Encoding.DER)
        return asn1_x509.Certificate.load(data)
    raise TypeError(f"not a certificate: {type(cert).__name__}")


def _reader(pdf: bytes) -> PdfFileReader:
    if not isinstance(pdf, bytes | bytearray) or b"%PDF-" not in pdf[:1024]:
        raise NotAPdf("not a PDF: no %PDF- header in the first 1024 bytes")
    try:
        reader = PdfFileReader(io.BytesIO(bytes(pdf)))
        reader.root  # noqa: B018 (parse the trailer and catalog now)
        return reader
    except Exception as exc:  # pyHanko's parser raises assorted types on hostile input; all mean "unreadable"
        raise NotAPdf(f"unreadable PDF: {exc}") from exc


def _embedded(reader: PdfFileReader) -> list[EmbeddedPdfSignature | tuple[str, Exception]]:
    try:
        found = list(enumerate_sig_fields(reader, filled_status=True))
    except Exception as exc:  # as above: a broken form tree is an unreadable PDF
        raise NotAPdf(f"unreadable signature fields: {exc}") from exc
    out: list[EmbeddedPdfSignature | tuple[str, Exception]] = []
    for name, _value, field_ref in found:
        try:
            out.append(EmbeddedPdfSignature(reader, field_ref, name))
        except Exception as exc:  # a damaged signature is reported as such, the others are still checked
            out.append((name, exc))
    return out


def _context(roots: list[asn1_x509.Certificate], moment: dt.datetime | None, revocation_mode: str,
             crls: Sequence[bytes], ocsps: Sequence[bytes]) -> ValidationContext:
    return ValidationContext(trust_roots=roots, allow_fetching=False, moment=moment,
                             revocation_mode=revocation_mode, crls=list(crls) or None, ocsps=list(ocsps) or None)


def _is_certification(reader: PdfFileReader, emb: EmbeddedPdfSignature) -> bool:
    try:
        ref = reader.root["/Perms"].raw_get("/DocMDP")
        return bool(ref.reference == emb.sig_field.raw_get("/V").reference)
    except (KeyError, AttributeError):
        return False


def _within(cert: asn1_x509.Certificate, moment: dt.datetime) -> bool:
    validity = cert["tbs_certificate"]["validity"]
    return bool(validity["not_before"].native <= moment <= validity["not_after"].native)


def verify_pdf(pdf: bytes, trust_roots: Iterable[CertificateLike], *,
               tsa_roots: Iterable[CertificateLike] | None = None, at: dt.datetime | None = None,
               revocation_mode: str = "soft-fail", crls: Sequence[bytes] = (),
               ocsps: Sequence[bytes] = ()) -> list[SignatureReport]:
    """One :class:`SignatureReport` per filled signature field, in signing order.

    ``trust_roots`` anchor the signers (``SigningAuthority.trust_roots()``); ``tsa_roots`` the timestamps
    (default: ``trust_roots``). ``at`` validates as of another (aware) time, default now. ``revocation_mode``,
    ``crls`` and ``ocsps`` go to pyHanko's ``ValidationContext`` (see the module docstring). Raises
    :class:`NotAPdf` for bytes that are not a readable PDF and :class:`NoSignatures` for a PDF without
    signatures; a damaged signature gets a report with ``intact=False``.
    """
    roots = [_asn1(c) for c in trust_roots]
    ts_roots = [_asn1(c) for c in tsa_roots] if tsa_roots is not None else roots
    if not roots:
        raise ValueError("trust_roots is empty: nothing could be trusted")
    reader = _reader(pdf)
    embedded = _embedded(reader)
    if not embedded:
        raise NoSignatures("the PDF has no signatures")

    def contexts(moment: dt.datetime | None) -> tuple[ValidationContext, ValidationContext]:
        return (_context(roots, moment, revocation_mode, crls, ocsps),
                _context(ts_roots, at, revocation_mode, crls, ocsps))

    reports = []
    for emb in embedded:
        if isinstance(emb, tuple):
            reports.append(_broken(emb[0], emb[1]))
            continue
        try:
            reports.append(outside_event_loop(lambda emb=emb: _verify_one(reader, emb, contexts, at)))
        except Exception as exc:  # pyHanko raises on some malformed signatures: report, don't crash
            log.warning("signature %s could not be validated", emb.field_name, exc_info=exc)
            reports.append(_broken(emb.field_name, exc))
    reports.sort(key=lambda r: r.revision)
    return reports


def _verify_one(reader: PdfFileReader, emb: EmbeddedPdfSignature, contexts: Any,
                at: dt.datetime | None) -> SignatureReport:
    signer_vc, ts_vc = contexts(at)
    if emb.sig_object_type == "/DocTimeStamp":
        ts_status = validate_pdf_timestamp(emb, validation_context=ts_vc)
        return _report(emb, ts_status, kind="document_timestamp", validated_at=at, certified=False,
                       permission=None)

    status = validate_pdf_signature(emb, signer_vc, ts_vc)
    validated_at = at or dt.datetime.now(dt.UTC)
    cert = status.signing_cert
    ts = status.timestamp_validity
    if (not status.trusted and status.intact and status.valid and not _within(cert, validated_at)
            and ts is not None and ts.intact and ts.valid and ts.trusted and _within(cert, ts.timestamp)):
        # expired (or not yet valid) now, but a trusted timestamp proves the signature existed while the
        # certificate was valid: judge the chain at the timestamp's time (module docstring)
        signer_at_ts, ts_vc = contexts(ts.timestamp)  # the timestamp itself is still judged at ``at``
        status = validate_pdf_signature(emb, signer_at_ts, ts_vc)
        validated_at = ts.timestamp
    is_cert = _is_certification(reader, emb)
    permission = emb.docmdp_level.name.lower() if is_cert and emb.docmdp_level is not None else None
    return _report(emb, status, kind="signature", validated_at=validated_at, certified=is_cert,
                   permission=permission)


def _name_of(cert: asn1_x509.Certificate) -> str:
    subject = cert.subject.native
    return str(subject.get("common_name") or cert.subject.human_friendly)


def _problems(status: Any, kind: str, validated_at: dt.datetime | None) -> list[str]:
    problems = []
    if not status.intact:
        problems.append("digest_mismatch")
    elif not status.valid:
        problems.append("signature_invalid")
    elif not status.trusted:
        expired = not _within(status.signing_cert, validated_at or dt.datetime.now(dt.UTC))
        problems.append("certificate_expired" if expired else "untrusted_certificate")
    if kind == "signature":
        ts = status.timestamp_validity
        if ts is not None and not (ts.intact and ts.valid and ts.trusted):
            problems.append("timestamp_untrusted")
        elif ts is not None and ts.timestamp < status.signing_cert.not_valid_before:
            # pyHanko's basic validation does not compare the two (its AdES "validation with time" does:
            # ETSI EN 319 102-1 §5.5, NOT_YET_VALID)
            problems.append("timestamp_before_certificate")
        if isinstance(status, PdfSignatureStatus):
            if status.coverage is not None and status.coverage < SignatureCoverageLevel.ENTIRE_REVISION:
                problems.append("coverage")
            elif status.docmdp_ok is False:
                problems.append("illegal_modifications")
            if not status.seed_value_ok:
                problems.append("seed_values")
    return problems


def _report(emb: EmbeddedPdfSignature, status: Any, *, kind: str, validated_at: dt.datetime | None,
            certified: bool, permission: str | None) -> SignatureReport:
    cert = status.signing_cert
    is_sig = kind == "signature"
    ts = status.timestamp_validity if is_sig else status
    ts_time = ts.timestamp if ts is not None else None
    level = status.modification_level
    problems = _problems(status, kind, validated_at)
    bottom_line = bool(status.bottom_line) if is_sig else bool(status.intact and status.valid and status.trusted
                                                                and status.docmdp_ok is not False)
    bottom_line = bottom_line and "timestamp_before_certificate" not in problems
    report = dict(
        field_name=emb.field_name, kind=kind, revision=emb.signed_revision, signer_common_name=_name_of(cert),
        signer_subject=cert.subject.human_friendly,
        signing_time=status.signer_reported_dt if is_sig else None, timestamp_time=ts_time,
        tsa=_name_of(ts.signing_cert) if ts is not None else None,
        timestamp_trusted=bool(ts.intact and ts.valid and ts.trusted) if ts is not None else None,
        intact=bool(status.intact), valid=bool(status.valid), trusted=bool(status.trusted),
        bottom_line=bottom_line, validated_at=validated_at,
        coverage=_COVERAGE.get(status.coverage, "unclear"),
        modification_level=level.name.lower() if isinstance(level, ModificationLevel) else None,
        docmdp_ok=status.docmdp_ok, certified=certified, docmdp_permission=permission,
        problems=tuple(problems), pyhanko_summary=status.summary())
    en, zh = _summaries(report)
    return SignatureReport(**report, summary_en=en, summary_zh=zh)


def _broken(field_name: str, exc: Exception) -> SignatureReport:
    en, zh = _PROBLEMS["unreadable"]
    return SignatureReport(
        field_name=field_name, kind="signature", revision=-1, signer_common_name="", signer_subject="",
        signing_time=None, timestamp_time=None, tsa=None, timestamp_trusted=None, intact=False, valid=False,
        trusted=False, bottom_line=False, validated_at=None, coverage="unclear", modification_level=None,
        docmdp_ok=None, certified=False, docmdp_permission=None, problems=("unreadable",),
        summary_en=f"NOT valid: {en} ({exc}).", summary_zh=f"无效：{zh}（{exc}）。", pyhanko_summary="INVALID")


def _china(moment: dt.datetime | None) -> str:
    return moment.astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M:%S") if moment else "?"


_CHANGES_EN = {"none": "not changed since", "lta_updates": "changed since only by validation data",
               "form_filling": "changed since only by form filling and signing",
               "annotations": "changed since by form filling, signing and annotations",
               "other": "changed since"}
_CHANGES_ZH = {"none": "签署后未被修改", "lta_updates": "签署后仅追加了验证数据",
               "form_filling": "签署后仅有填写表单和签名", "annotations": "签署后有填写表单、签名和注释",
               "other": "签署后被修改"}


def _summaries(r: dict[str, Any]) -> tuple[str, str]:
    what_en = "Certification signature" if r["certified"] else (
        "Document timestamp" if r["kind"] == "document_timestamp" else "Signature")
    what_zh = "认证签名" if r["certified"] else ("文档时间戳" if r["kind"] == "document_timestamp" else "签名")
    who, when = r["signer_common_name"], _china(r["timestamp_time"] or r["signing_time"])
    basis_en = "time-stamped" if r["timestamp_time"] else "signer's clock, no timestamp"
    basis_zh = "可信时间戳" if r["timestamp_time"] else "签署方自报时间，无时间戳"
    level = r["modification_level"] or "other"
    if r["bottom_line"]:
        en = (f"Valid. {what_en} in field '{r['field_name']}' by {who} at {when} China time ({basis_en}"
              f"{', TSA ' + r['tsa'] if r['tsa'] else ''}); document {_CHANGES_EN[level]}"
              f"{' (all permitted)' if level != 'none' else ''}.")
        zh = (f"有效。{what_zh}（签名域“{r['field_name']}”）由 {who} 于北京时间 {when} 签署（{basis_zh}）；"
              f"{_CHANGES_ZH[level]}{'，均为允许的修改' if level != 'none' else ''}。")
        if r["validated_at"] and r["timestamp_time"] and r["validated_at"] == r["timestamp_time"]:
            en += " The certificate has expired since; the timestamp proves it was valid at signing."
            zh += "证书现已过期，时间戳证明签署时证书有效。"
        return en, zh
    problems = r["problems"] or ("untrusted_certificate",)
    en = f"NOT valid. {what_en} in field '{r['field_name']}' by {who or '?'}: " + "; ".join(
        _PROBLEMS[p][0] for p in problems) + "."
    zh = f"无效。{what_zh}（签名域“{r['field_name']}”，签署人 {who or '?'}）：" + "；".join(
        _PROBLEMS[p][1] for p in problems) + "。"
    if r["certified"] and "illegal_modifications" in problems:
        en += " The certification no longer holds: the document is not the one the lessor certified."
        zh += "认证已失效：文件已不是出租人认证的版本。"
    return en, zh
