"""The contract signing layer: CA, event certificates, PAdES signatures with pyHanko, offline validation,
checked against poppler's pdfsig as an independent validator."""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
import stat
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.oid import NameOID
from PIL import Image
from PIL import ImageDraw
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from contract.signing.asyncio_bridge import outside_event_loop
from contract.signing.ca import DOCUMENT_SIGNING
from contract.signing.ca import CertificateAuthorityError
from contract.signing.ca import SigningAuthority
from contract.signing.errors import NoSignatures
from contract.signing.errors import NotAPdf
from contract.signing.errors import SigningFailed
from contract.signing.pades import FieldSpec
from contract.signing.pades import certify
from contract.signing.pades import countersign_lessor
from contract.signing.pades import sign_lessee
from contract.signing.verify import SignatureReport
from contract.signing.verify import _asn1
from contract.signing.verify import verify_pdf
from tests.common.tsa import TsaServer

ID_HASH = "3f" * 32
FIELDS = [FieldSpec("lessee", 1, (72, 560, 272, 640), "承租人签名"),
          FieldSpec("lessor", 1, (320, 560, 520, 640), "出租人签章")]
PDFSIG = shutil.which("pdfsig")
#: a small two-page Chinese document (the real contract template lives in contract/document)
CONTRACT_HTML = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><style>
@page { size: A4; margin: 20mm; }
body { font-family: "Noto Sans CJK SC", sans-serif; font-size: 11pt; }
.page2 { page-break-before: always; }
</style></head><body>
<h1>融资租赁合同（测试）</h1><p>出租人：领航融资租赁有限公司</p><p>承租人：张三丰</p>
<p>年化利率（单利）7.12%，租期 36 个月，每月租金 ¥3,602.21。</p>
<div class="page2"><h2>签署</h2><p>承租人（签名）：</p><p>出租人（签章）：</p></div>
</body></html>"""


@pytest.fixture(scope="module")
def contract_pdf() -> bytes:
    from weasyprint import HTML

    return HTML(string=CONTRACT_HTML).write_pdf()


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("signing-ca")


@pytest.fixture(scope="module")
def authority(ca_dir: Path) -> SigningAuthority:
    return SigningAuthority.load_or_create(ca_dir)


def _fresh_ca_dir(tmp_path: Path, authority: SigningAuthority) -> Path:
    """An empty CA directory that already holds the stamp fonts (making them takes seconds, not the CA)."""
    directory = tmp_path / "ca"
    directory.mkdir()
    for font in (authority.stamp_fonts.full, authority.stamp_fonts.common):
        shutil.copyfile(font, directory / font.name)
    return directory


@pytest.fixture(scope="module")
def other_authority(tmp_path_factory: pytest.TempPathFactory, authority: SigningAuthority) -> SigningAuthority:
    return SigningAuthority.load_or_create(_fresh_ca_dir(tmp_path_factory.mktemp("other"), authority),
                                           lessor_name="别家融资租赁有限公司")


@pytest.fixture(scope="module")
def tsa() -> Iterator[TsaServer]:
    with TsaServer() as server:
        yield server


def drawn_png(size: tuple[int, int] = (480, 160)) -> bytes:
    """A signature as a phone canvas sends it: dark strokes on a transparent background."""
    img = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.line([(30, 110), (90, 40), (150, 120), (230, 50), (300, 115), (440, 60)], fill=(20, 20, 90, 255), width=7)
    draw.arc((300, 30, 400, 140), 20, 300, fill=(20, 20, 90, 255), width=5)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def certified(contract_pdf: bytes, authority: SigningAuthority, tsa: TsaServer) -> bytes:
    return certify(contract_pdf, authority.lessor_credential(), FIELDS, timestamper=HTTPTimeStamper(tsa.url))


@pytest.fixture(scope="module")
def lessee_signed(certified: bytes, authority: SigningAuthority, tsa: TsaServer) -> bytes:
    credential = authority.issue_event_certificate("王小明", ID_HASH, "evt-20250101-0001")
    return sign_lessee(certified, credential, "lessee", drawn_png(), "王小明", HTTPTimeStamper(tsa.url),
                       fonts=authority.stamp_fonts)


@pytest.fixture(scope="module")
def fully_signed(lessee_signed: bytes, authority: SigningAuthority, tsa: TsaServer) -> bytes:
    return countersign_lessor(lessee_signed, authority.lessor_credential(), "lessor", HTTPTimeStamper(tsa.url),
                              fonts=authority.stamp_fonts)


def verify(pdf: bytes, authority: SigningAuthority, tsa: TsaServer,
           at: dt.datetime | None = None) -> list[SignatureReport]:
    return verify_pdf(pdf, authority.trust_roots(), tsa_roots=[tsa.root_certificate], at=at)


def pdfsig(pdf: bytes, tmp_path: Path) -> list[tuple[str, str]]:
    """(field name, "Signature Validation" line) per signature, from poppler's pdfsig.

    ``-nocert``: no certificate check. Trust would need an NSS database with our root, made with NSS's
    ``certutil``, which is not installed here (Debian libnss3-tools); the integrity verdicts ("Signature is
    Valid." / "Digest Mismatch.") do not depend on trust.
    """
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf)
    run = subprocess.run([PDFSIG, "-nocert", str(path)], capture_output=True, text=True, timeout=60, check=False)
    blocks: list[list[str]] = []
    for line in run.stdout.splitlines():
        line = line.strip()
        if line.startswith("Signature #"):
            blocks.append(["", ""])
        elif blocks and line.startswith("- Signature Field Name:"):
            blocks[-1][0] = line.split(":", 1)[1].strip()
        elif blocks and line.startswith("- Signature Validation:"):
            blocks[-1][1] = line.split(":", 1)[1].strip()
        elif blocks and line == "The signature form field is not signed.":
            blocks[-1][1] = "not signed"
    assert blocks and all(name and verdict for name, verdict in blocks), run.stdout + run.stderr
    return [(name, verdict) for name, verdict in blocks]


needs_pdfsig = pytest.mark.skipif(PDFSIG is None, reason="poppler-utils (pdfsig) not installed")


# --- the CA -------------------------------------------------------------------------------------------------

def test_ca_is_made_once_and_read_back(ca_dir: Path, authority: SigningAuthority) -> None:
    for name in ("root-ca.key", "root-ca.crt", "signing-ca.key", "signing-ca.crt", "lessor.key", "lessor.crt"):
        mode = stat.S_IMODE((ca_dir / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
    again = SigningAuthority.load_or_create(ca_dir)
    assert again.root == authority.root
    assert again.lessor_credential().certificate == authority.lessor_credential().certificate
    assert again.lessor_credential().key.private_numbers() == authority.lessor_credential().key.private_numbers()
    assert again.fingerprint() == authority.fingerprint()
    assert authority.trust_roots() == [authority.root]
    root = authority.root
    assert root.subject == root.issuer
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert root.not_valid_after_utc - root.not_valid_before_utc >= dt.timedelta(days=3650)


def test_concurrent_first_runs_end_with_one_ca(tmp_path: Path, authority: SigningAuthority) -> None:
    directory = _fresh_ca_dir(tmp_path, authority)
    barrier = threading.Barrier(4)

    def start() -> SigningAuthority:
        barrier.wait()
        return SigningAuthority.load_or_create(directory)

    with ThreadPoolExecutor(4) as pool:
        made = list(pool.map(lambda _: start(), range(4)))
    assert len({a.fingerprint() for a in made}) == 1
    assert len({a.lessor_credential().certificate for a in made}) == 1
    lessor = made[0].lessor_credential()
    lessor.certificate.verify_directly_issued_by(lessor.chain[1])
    assert not list(directory.glob(".*"))  # no temporary files left behind


def test_production_directory_without_root_key(tmp_path: Path, authority: SigningAuthority) -> None:
    directory = _fresh_ca_dir(tmp_path, authority)
    made = SigningAuthority.load_or_create(directory)
    (directory / "root-ca.key").unlink()  # taken offline once the issuing CA exists
    assert SigningAuthority.load_or_create(directory).fingerprint() == made.fingerprint()
    (directory / "signing-ca.crt").unlink()
    with pytest.raises(CertificateAuthorityError, match="root key is needed"):
        SigningAuthority.load_or_create(directory)


def test_event_certificate(authority: SigningAuthority) -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    cred = authority.issue_event_certificate("王小明", ID_HASH, "evt-20250101-0001")
    cert = cred.certificate
    subject = cert.subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "王小明"
    assert subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == ID_HASH
    assert subject.get_attributes_for_oid(NameOID.DN_QUALIFIER)[0].value == "evt-20250101-0001"
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= dt.timedelta(minutes=30)
    assert before - dt.timedelta(minutes=1) <= cert.not_valid_before_utc <= before
    assert cert.not_valid_after_utc > before + dt.timedelta(minutes=28)
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.content_commitment
    assert not usage.value.key_cert_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert DOCUMENT_SIGNING in eku and ExtendedKeyUsageOID.EMAIL_PROTECTION in eku
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    # chain: event certificate ← issuing CA ← root
    assert cred.chain[0] == cert and cred.chain[-1] == authority.root
    for child, parent in zip(cred.chain, cred.chain[1:], strict=False):
        child.verify_directly_issued_by(parent)
    assert cert.public_key() == cred.key.public_key()
    # one key pair per event
    other = authority.issue_event_certificate("王小明", ID_HASH, "evt-20250101-0002")
    assert other.key.public_key() != cred.key.public_key()
    assert "key=" not in repr(cred)  # the event key never ends up in a log line


@pytest.mark.parametrize("kwargs", [{"subject_name": " "}, {"id_number_hash": "110105198803150012X身份证"},
                                    {"event_id": "事件-1"}, {"valid_for": dt.timedelta(seconds=30)}])
def test_event_certificate_rejects_bad_input(authority: SigningAuthority, kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"subject_name": "王小明", "id_number_hash": ID_HASH, "event_id": "evt-1", **kwargs}
    with pytest.raises(CertificateAuthorityError):
        authority.issue_event_certificate(**args)  # type: ignore[arg-type]


# --- signing and validation ---------------------------------------------------------------------------------

def test_certify_sign_countersign_all_valid(fully_signed: bytes, authority: SigningAuthority,
                                            tsa: TsaServer) -> None:
    reports = verify(fully_signed, authority, tsa)
    assert [r.field_name for r in reports] == ["certification", "lessee", "lessor"]
    for r in reports:
        assert (r.intact, r.valid, r.trusted, r.bottom_line) == (True, True, True, True), r.summary_en
        assert r.docmdp_ok is True and r.problems == ()
        assert r.timestamp_time is not None and r.timestamp_trusted and r.tsa == "Leaseline Test TSA"  # B-T
        assert r.signing_time is not None and abs(r.timestamp_time - r.signing_time) < dt.timedelta(seconds=30)
        assert r.summary_en.startswith("Valid.") and r.summary_zh.startswith("有效。")
    cert_sig, lessee, lessor = reports
    assert cert_sig.certified and cert_sig.docmdp_permission == "fill_forms"
    assert not lessee.certified and not lessor.certified
    assert cert_sig.signer_common_name == lessor.signer_common_name == "领航融资租赁有限公司"
    assert lessee.signer_common_name == "王小明" and "evt-20250101-0001" in lessee.signer_subject
    # later revisions only filled the prepared fields; the last signature covers the whole file
    assert (cert_sig.coverage, cert_sig.modification_level) == ("entire_revision", "form_filling")
    assert (lessee.coverage, lessee.modification_level) == ("entire_revision", "form_filling")
    assert (lessor.coverage, lessor.modification_level) == ("entire_file", "none")
    assert lessee.revision > cert_sig.revision and lessor.revision > lessee.revision
    assert tsa.requests >= 3


@needs_pdfsig
def test_pdfsig_agrees(fully_signed: bytes, tmp_path: Path) -> None:
    verdicts = dict(pdfsig(fully_signed, tmp_path))
    assert verdicts == {"certification": "Signature is Valid.", "lessee": "Signature is Valid.",
                        "lessor": "Signature is Valid."}


def test_signatures_are_pades_with_visible_lessee_stamp(fully_signed: bytes) -> None:
    reader = PdfFileReader(io.BytesIO(fully_signed))
    by_name = {s.field_name: s for s in reader.embedded_signatures}
    for sig in by_name.values():
        assert sig.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    lessee_widget = by_name["lessee"].sig_field
    assert [round(float(v)) for v in lessee_widget["/Rect"]] == [72, 560, 272, 640]
    appearance = lessee_widget["/AP"]["/N"]
    resources = appearance["/Resources"]
    xobjects = [x.get_object() for x in resources["/XObject"].values()]
    images = [x for x in xobjects if x.get("/Subtype") == "/Image"]
    assert images and "/SMask" in images[0]  # the drawn signature, transparent background kept
    fonts = [f.get_object() for f in resources["/Font"].values()]
    assert any("NotoSansCJKsc" in str(f["/BaseFont"]) for f in fonts)  # embedded CJK subset for name + time
    assert by_name["certification"].sig_field.get("/Rect") in (None, [0, 0, 0, 0])  # invisible


def test_certification_must_come_first(certified: bytes, authority: SigningAuthority) -> None:
    """pyHanko refuses a certification signature once a document has a signature (ISO 32000 §12.8.2.2)."""
    with pytest.raises(SigningFailed, match="first signature"):
        certify(certified, authority.lessor_credential(), [FieldSpec("again", 0, (10, 10, 110, 60))],
                field_name="certification2")


def test_signing_a_filled_or_unknown_field_fails(lessee_signed: bytes, authority: SigningAuthority) -> None:
    cred = authority.issue_event_certificate("王小明", ID_HASH, "evt-again")
    with pytest.raises(SigningFailed, match="filled already"):
        sign_lessee(lessee_signed, cred, "lessee", drawn_png(), "王小明", fonts=authority.stamp_fonts)
    with pytest.raises(SigningFailed, match="nosuchfield"):
        sign_lessee(lessee_signed, cred, "nosuchfield", drawn_png(), "王小明", fonts=authority.stamp_fonts)


@pytest.mark.parametrize("png", [b"", b"\x89PNG\r\n\x1a\nnot really", b"\xff\xd8\xff\xe0 a jpeg", "blank"])
def test_bad_drawn_signature(certified: bytes, authority: SigningAuthority, png: bytes | str) -> None:
    if png == "blank":
        out = io.BytesIO()
        Image.new("RGBA", (300, 100), (0, 0, 0, 0)).save(out, "PNG")
        png = out.getvalue()
    cred = authority.issue_event_certificate("王小明", ID_HASH, "evt-bad-png")
    with pytest.raises(SigningFailed):
        sign_lessee(certified, cred, "lessee", png, "王小明", fonts=authority.stamp_fonts)  # type: ignore[arg-type]


def test_rare_character_name_uses_the_full_font(certified: bytes, authority: SigningAuthority) -> None:
    fonts = authority.stamp_fonts
    assert fonts.for_text("王小明  2025-01-01 12:00:00 UTC+8") == fonts.common
    assert fonts.for_text("张喆") == fonts.full  # 喆 is not in GB 2312
    cred = authority.issue_event_certificate("张喆", ID_HASH, "evt-rare")
    signed = sign_lessee(certified, cred, "lessee", drawn_png(), "张喆", fonts=fonts)
    (lessee,) = [r for r in verify_pdf(signed, authority.trust_roots()) if r.field_name == "lessee"]
    assert lessee.bottom_line and lessee.timestamp_time is None  # no time-stamper: PAdES B-B


def test_stamp_name_must_be_the_certificate_name(certified: bytes, authority: SigningAuthority) -> None:
    cred = authority.issue_event_certificate("王小明", ID_HASH, "evt-name")
    with pytest.raises(SigningFailed, match="not the certificate"):
        sign_lessee(certified, cred, "lessee", drawn_png(), "李四", fonts=authority.stamp_fonts)


# --- tampering ----------------------------------------------------------------------------------------------

def test_one_changed_byte_breaks_every_signature(fully_signed: bytes, authority: SigningAuthority,
                                                 tsa: TsaServer, tmp_path: Path) -> None:
    at = fully_signed.index(b"WeasyPrint")  # the /Producer string of revision 0, inside every signed range
    tampered = bytearray(fully_signed)
    tampered[at] = ord("w")
    reports = verify(bytes(tampered), authority, tsa)
    assert len(reports) == 3
    for r in reports:
        assert not r.intact and not r.bottom_line and not r.trusted
        assert "digest_mismatch" in r.problems and r.summary_en.startswith("NOT valid.")
        assert "篡改" in r.summary_zh
    if PDFSIG:
        assert {verdict for _, verdict in pdfsig(bytes(tampered), tmp_path)} == {"Digest Mismatch."}


def _paint_over_page(pdf: bytes) -> bytes:
    """An incremental update that draws over page 1 (e.g. hides the monthly rent): not form filling."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    stream = generic.StreamObject(stream_data=b"q 1 1 1 rg 60 600 480 120 re f Q")
    writer.add_stream_to_page(0, writer.add_object(stream))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_page_change_after_lessee_signature_breaks_the_certification(
        lessee_signed: bytes, authority: SigningAuthority, tsa: TsaServer, tmp_path: Path) -> None:
    modified = _paint_over_page(lessee_signed)
    reports = {r.field_name: r for r in verify(modified, authority, tsa)}
    cert_sig, lessee = reports["certification"], reports["lessee"]
    assert cert_sig.certified
    for r in (cert_sig, lessee):
        # the signed bytes are untouched: pyHanko's difference analysis is what catches the change
        assert r.intact and r.valid and r.trusted
        assert r.coverage == "entire_revision" and r.modification_level == "other"
        assert r.docmdp_ok is False and not r.bottom_line
        assert "illegal_modifications" in r.problems
    assert "certification no longer holds" in cert_sig.summary_en and "认证已失效" in cert_sig.summary_zh
    if PDFSIG:  # pdfsig only checks the byte ranges: it still calls the signatures valid
        assert dict(pdfsig(modified, tmp_path)) == {"certification": "Signature is Valid.",
                                                    "lessee": "Signature is Valid.", "lessor": "not signed"}


def test_certificate_from_another_ca_is_not_trusted(certified: bytes, authority: SigningAuthority,
                                                    other_authority: SigningAuthority, tsa: TsaServer) -> None:
    foreign = other_authority.issue_event_certificate("王小明", ID_HASH, "evt-foreign")
    signed = sign_lessee(certified, foreign, "lessee", drawn_png(), "王小明", HTTPTimeStamper(tsa.url),
                         fonts=authority.stamp_fonts)
    reports = {r.field_name: r for r in verify(signed, authority, tsa)}
    lessee = reports["lessee"]
    assert lessee.intact and lessee.valid and not lessee.trusted and not lessee.bottom_line
    assert lessee.problems == ("untrusted_certificate",)
    assert reports["certification"].bottom_line
    # and a whole document checked against the wrong roots
    assert not any(r.trusted for r in verify_pdf(signed, other_authority.trust_roots(),
                                                 tsa_roots=[tsa.root_certificate]) if r.field_name != "lessee")


# --- time: expired event certificates -----------------------------------------------------------------------

def _lessee_report(pdf: bytes, authority: SigningAuthority, tsa: TsaServer,
                   at: dt.datetime | None = None) -> SignatureReport:
    (report,) = [r for r in verify(pdf, authority, tsa, at) if r.field_name == "lessee"]
    return report


def test_expired_event_certificate_with_timestamp(lessee_signed: bytes, authority: SigningAuthority,
                                                  tsa: TsaServer) -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)  # the 30-minute certificate has expired by then
    # what pyHanko itself does: the signer's chain is checked at the validation time, timestamp or not
    reader = PdfFileReader(io.BytesIO(lessee_signed))
    (emb,) = [s for s in reader.embedded_signatures if s.field_name == "lessee"]
    # (pyHanko's synchronous call runs asyncio.run: off this thread when a browser test left its loop running)
    status = outside_event_loop(lambda: validate_pdf_signature(
        emb, ValidationContext(trust_roots=[_asn1(c) for c in authority.trust_roots()], allow_fetching=False,
                               moment=later),
        ValidationContext(trust_roots=[_asn1(tsa.root_certificate)], allow_fetching=False, moment=later)))
    assert status.intact and status.valid and status.timestamp_validity.trusted
    assert not status.trusted and not status.bottom_line
    assert status.trust_problem_indic.name == "OUT_OF_BOUNDS_NO_POE"
    # verify_pdf: the trusted timestamp proves the signature existed while the certificate was valid
    report = _lessee_report(lessee_signed, authority, tsa, at=later)
    assert report.trusted and report.bottom_line
    assert report.validated_at == report.timestamp_time
    assert "expired since" in report.summary_en


def test_expired_event_certificate_without_timestamp(certified: bytes, authority: SigningAuthority,
                                                     tsa: TsaServer) -> None:
    cred = authority.issue_event_certificate("王小明", ID_HASH, "evt-bb")
    signed = sign_lessee(certified, cred, "lessee", drawn_png(), "王小明", fonts=authority.stamp_fonts)  # B-B
    assert _lessee_report(signed, authority, tsa).bottom_line
    report = _lessee_report(signed, authority, tsa, at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=2))
    assert report.timestamp_time is None
    assert report.intact and report.valid and not report.trusted and not report.bottom_line
    assert report.problems == ("certificate_expired",)


def test_certificate_already_expired_when_signing(certified: bytes, authority: SigningAuthority,
                                                  tsa: TsaServer) -> None:
    two_hours_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    cred = authority.issue_event_certificate("王小明", ID_HASH, "evt-stale", now=two_hours_ago)
    signed = sign_lessee(certified, cred, "lessee", drawn_png(), "王小明", HTTPTimeStamper(tsa.url),
                         fonts=authority.stamp_fonts)  # pyHanko signs without checking the certificate
    report = _lessee_report(signed, authority, tsa)
    assert report.timestamp_trusted  # the timestamp is fine, and it proves signing *after* expiry
    assert not report.trusted and not report.bottom_line and report.problems == ("certificate_expired",)


def test_timestamp_from_before_the_certificate(certified: bytes, authority: SigningAuthority) -> None:
    """A TSA whose clock is an hour behind: pyHanko accepts the token; verify_pdf does not."""
    hour_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    with TsaServer(clock=lambda: hour_ago) as early_tsa:
        cred = authority.issue_event_certificate("王小明", ID_HASH, "evt-early-tsa")
        signed = sign_lessee(certified, cred, "lessee", drawn_png(), "王小明", HTTPTimeStamper(early_tsa.url),
                             fonts=authority.stamp_fonts)
        report = _lessee_report(signed, authority, early_tsa)
        later = _lessee_report(signed, authority, early_tsa, at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=2))
    assert report.timestamp_time == hour_ago and report.timestamp_trusted
    assert report.trusted and "INTACT:TRUSTED" in report.pyhanko_summary  # pyHanko: all fine
    assert not report.bottom_line and report.problems == ("timestamp_before_certificate",)
    # and it does not rescue the certificate once expired
    assert not later.trusted and later.problems == ("certificate_expired", "timestamp_before_certificate")


# --- garbage in ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("data", [b"", b"hello", os.urandom(2048), b"%PDF-1.7\n" + os.urandom(4096),
                                  b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n"])
def test_garbage_is_not_a_pdf(authority: SigningAuthority, data: bytes) -> None:
    with pytest.raises(NotAPdf):
        verify_pdf(data, authority.trust_roots())
    with pytest.raises(NotAPdf):
        certify(data, authority.lessor_credential(), FIELDS)


def test_truncated_signed_pdf(fully_signed: bytes, authority: SigningAuthority) -> None:
    for cut in (len(fully_signed) // 2, len(fully_signed) - 100):
        try:
            reports = verify_pdf(fully_signed[:cut], authority.trust_roots())
        except (NotAPdf, NoSignatures):
            continue
        assert not all(r.bottom_line for r in reports)


def test_unsigned_pdf_has_no_signatures(contract_pdf: bytes, authority: SigningAuthority) -> None:
    with pytest.raises(NoSignatures):
        verify_pdf(contract_pdf, authority.trust_roots())
