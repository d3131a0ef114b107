"""PAdES signatures on the lease contract with pyHanko: certify, the customer signs, the lessor countersigns.

Order (ISO 32000-1 §12.8.2.2 / ISO 32000-2 §12.8.2.2: a document has at most one certification signature
and it is the first one; pyHanko's ``PdfSigner`` raises "Certification signatures must be the first
signature in a given document" otherwise):

1. :func:`certify` — the lessor's **certification** (author) signature, DocMDP ``P=2``
   (:attr:`MDPPerm.FILL_FORMS`: later revisions may fill forms and sign the prepared fields, nothing else).
   The same revision creates the empty visible signature fields of the lessee and the lessor, so the
   fields themselves (page, box) are covered by the certification.
2. :func:`sign_lessee` — the customer's approval signature in their field, with an event credential
   (:meth:`SigningAuthority.issue_event_certificate`) and a visible appearance: the signature drawn on the
   phone's canvas plus a line "name + time" in Noto Sans CJK.
3. :func:`countersign_lessor` — the lessor's approval signature in its field.

Each step is an incremental update (the earlier revisions' bytes are left as they are, so every earlier
signature still verifies). All signatures are PAdES (``/SubFilter /ETSI.CAdES.detached``, CMS with the
ESS signing-certificate-v2 attribute): **B-B** without a time-stamper, **B-T** with one
(``pyhanko.sign.timestamps.HTTPTimeStamper(url)``: an RFC 3161 token over the signature value).

API: https://pyhanko.readthedocs.io/en/latest/lib-guide/signing.html (PdfSigner, PdfSignatureMetadata,
SigFieldSpec, TextStampStyle) and ``pyhanko.sign.fields`` (MDPPerm, append_signature_field).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from PIL import Image
from PIL import UnidentifiedImageError
from pyhanko.pdf_utils import layout
from pyhanko.pdf_utils.images import PdfImage
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.sign import fields as pdf_fields
from pyhanko.sign.general import SigningError
from pyhanko.sign.signers import PdfSignatureMetadata
from pyhanko.sign.signers import PdfSigner
from pyhanko.sign.signers import SimpleSigner
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator.registry import SimpleCertificateStore

from contract.signing.asyncio_bridge import outside_event_loop
from contract.signing.ca import Credential
from contract.signing.ca import default_directory
from contract.signing.errors import NotAPdf
from contract.signing.errors import SigningFailed
from contract.signing.fonts import CachedFontFactory
from contract.signing.fonts import StampFonts
from contract.signing.fonts import prepare_stamp_fonts
from kyc.images import strict_decoding

#: China Standard Time has no daylight saving: a fixed offset needs no tz database
CHINA_TIME = dt.timezone(dt.timedelta(hours=8), "CST")
CERTIFICATION_FIELD = "certification"
LESSEE_REASON = "承租人签署融资租赁合同"
LESSOR_REASON = "出租人签署融资租赁合同"
CERTIFY_REASON = "出租人定稿认证"

#: the drawn signature: a PNG from a canvas, within reason (a bigger image is an attack or a mistake)
MAX_PNG_BYTES = 2 * 1024 * 1024
MAX_PNG_SIDE = 4096
#: the drawn signature is cropped to its ink and scaled down to this width before embedding
EMBED_MAX_WIDTH = 600
TEXT_SIZE = 7  #: points, the line under the customer's drawn signature
LESSOR_TEXT_SIZE = 9


@dataclass(frozen=True)
class FieldSpec:
    """An empty signature field to prepare: ``page`` counts from 0 (negative: from the end), ``box`` is
    ``(x1, y1, x2, y2)`` in PDF points from the page's lower-left corner (A4 is 595 × 842)."""

    name: str
    page: int
    box: tuple[int, int, int, int]
    label: str | None = None  #: shown by viewers as the field's tooltip (``/TU``), e.g. "承租人签名"


def _asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _signer(credential: Credential) -> SimpleSigner:
    """pyHanko's in-memory signer for ``credential`` (its key converted in memory, never written)."""
    key = asn1_keys.PrivateKeyInfo.load(credential.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    chain = SimpleCertificateStore.from_certs([_asn1_cert(c) for c in credential.chain[1:]])
    return SimpleSigner(signing_cert=_asn1_cert(credential.certificate), signing_key=key, cert_registry=chain)


def _writer(pdf: bytes) -> IncrementalPdfFileWriter:
    if not isinstance(pdf, bytes | bytearray) or b"%PDF-" not in pdf[:1024]:
        raise NotAPdf("not a PDF: no %PDF- header in the first 1024 bytes")
    try:
        return IncrementalPdfFileWriter(io.BytesIO(pdf))
    except Exception as exc:  # pyHanko's parser raises assorted types on hostile input; all mean "unreadable"
        raise NotAPdf(f"unreadable PDF: {exc}") from exc


def _run(signer: PdfSigner, writer: IncrementalPdfFileWriter, *, existing_fields_only: bool,
         text_params: dict[str, str] | None = None) -> bytes:
    try:
        # pyHanko's synchronous API runs asyncio.run(): not from a running event loop (asyncio_bridge)
        out = outside_event_loop(lambda: signer.sign_pdf(writer, existing_fields_only=existing_fields_only,
                                                          appearance_text_params=text_params))
    except SigningError as exc:
        raise SigningFailed(str(exc)) from exc
    except PdfError as exc:  # e.g. PdfWriteError for a field name that exists
        raise SigningFailed(str(exc)) from exc
    return bytes(out.getbuffer())


def _font(fonts: StampFonts | None, text: str, size: int) -> CachedFontFactory:
    chosen = (fonts or prepare_stamp_fonts(default_directory())).for_text(text)
    return CachedFontFactory(str(chosen), font_size=size)


def _stamp_time(now: dt.datetime | None) -> str:
    # pyHanko's own "%(ts)s" is the CMS signing time, but only in UTC (TextStampStyle.timestamp_format has no
    # zone conversion); the stamp shows China time taken just before signing, the signature's signingTime
    # attribute and its RFC 3161 token stay the authoritative times
    return (now or dt.datetime.now(dt.UTC)).astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M:%S UTC+8")


def _text_style(fonts: StampFonts | None, text: str, size: int = TEXT_SIZE) -> TextBoxStyle:
    return TextBoxStyle(font=_font(fonts, text, size), font_size=size,
                        box_layout_rule=layout.SimpleBoxLayoutRule(
                            x_align=layout.AxisAlignment.ALIGN_MID, y_align=layout.AxisAlignment.ALIGN_MID,
                            margins=layout.Margins.uniform(1)))


def _bottom_line() -> layout.SimpleBoxLayoutRule:
    return layout.SimpleBoxLayoutRule(x_align=layout.AxisAlignment.ALIGN_MID,
                                      y_align=layout.AxisAlignment.ALIGN_MIN,
                                      margins=layout.Margins(left=2, right=2, top=2, bottom=1))


def drawn_signature(png: bytes) -> Image.Image:
    """The customer's drawn signature, checked and prepared for embedding.

    A PNG of at most :data:`MAX_PNG_BYTES` and :data:`MAX_PNG_SIDE` pixels a side with some ink on it;
    cropped to the ink and scaled to at most :data:`EMBED_MAX_WIDTH` pixels wide, kept with its alpha
    channel (transparent background; an opaque PNG is embedded as it is, background included). Raises
    :class:`SigningFailed` otherwise.
    """
    if not isinstance(png, bytes | bytearray) or len(png) > MAX_PNG_BYTES:
        raise SigningFailed(f"the drawn signature must be a PNG of at most {MAX_PNG_BYTES} bytes")
    strict_decoding()  # a truncated PNG is refused, whatever weasyprint's import switched off
    try:
        with Image.open(io.BytesIO(png), formats=["PNG"]) as img:
            if max(img.size) > MAX_PNG_SIDE:
                raise SigningFailed(f"the drawn signature is larger than {MAX_PNG_SIDE} pixels a side")
            rgba = img.convert("RGBA")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise SigningFailed(f"the drawn signature is not a readable PNG: {exc}") from exc
    alpha = rgba.getchannel("A")
    ink = alpha.getbbox()
    if ink is None:  # fully transparent: nothing was drawn
        raise SigningFailed("the drawn signature is empty")
    pad = 4
    x1, y1, x2, y2 = ink
    rgba = rgba.crop((max(0, x1 - pad), max(0, y1 - pad), min(rgba.width, x2 + pad), min(rgba.height, y2 + pad)))
    if rgba.width > EMBED_MAX_WIDTH:
        rgba = rgba.resize((EMBED_MAX_WIDTH, max(1, round(rgba.height * EMBED_MAX_WIDTH / rgba.width))),
                           Image.Resampling.LANCZOS)
    return rgba


def certify(pdf: bytes, lessor: Credential, fields: Sequence[FieldSpec], *,
            timestamper: TimeStamper | None = None, field_name: str = CERTIFICATION_FIELD,
            reason: str = CERTIFY_REASON) -> bytes:
    """The lessor's certification signature (DocMDP FILL_FORMS) over ``pdf`` plus the empty visible
    signature fields ``fields``, in one incremental update; the certification field itself is
    invisible. Must be the first signature of the document (:class:`SigningFailed` otherwise)."""
    writer = _writer(pdf)
    names = [spec.name for spec in fields]
    if len(set(names)) != len(names) or field_name in names:
        raise SigningFailed(f"signature field names must be distinct: {names + [field_name]}")
    try:
        for spec in fields:
            pdf_fields.append_signature_field(writer, pdf_fields.SigFieldSpec(
                sig_field_name=spec.name, on_page=spec.page, box=spec.box, readable_field_name=spec.label))
    except (PdfError, IndexError, ValueError) as exc:
        raise SigningFailed(f"cannot prepare the signature fields: {exc}") from exc
    meta = PdfSignatureMetadata(field_name=field_name, certify=True, docmdp_permissions=pdf_fields.MDPPerm.FILL_FORMS,
                                subfilter=pdf_fields.SigSeedSubFilter.PADES, md_algorithm="sha256", reason=reason)
    signer = PdfSigner(meta, _signer(lessor), timestamper=timestamper,
                       new_field_spec=pdf_fields.SigFieldSpec(sig_field_name=field_name))
    return _run(signer, writer, existing_fields_only=False)


def sign_lessee(pdf: bytes, credential: Credential, field_name: str, signature_png: bytes, signer_name: str,
                timestamper: TimeStamper | None = None, *, fonts: StampFonts | None = None,
                reason: str = LESSEE_REASON, now: dt.datetime | None = None) -> bytes:
    """The customer's PAdES approval signature in the prepared field ``field_name``.

    The appearance is the drawn signature (:func:`drawn_signature`) above a line ``signer_name`` + time
    (China time; ``now`` for tests). The name must be the certificate's CN. The line is set in the CJK stamp
    font (``fonts``: pass ``SigningAuthority.stamp_fonts``; default: those of the development CA directory).
    ``credential`` is the event credential issued for this signing: drop it afterwards.
    """
    if signer_name.strip() != credential.common_name:
        raise SigningFailed(f"the stamp name {signer_name!r} is not the certificate's {credential.common_name!r}")
    image = drawn_signature(signature_png)
    writer = _writer(pdf)
    params = {"signer": signer_name.strip(), "when": _stamp_time(now)}
    template = "%(signer)s  %(when)s"
    style = TextStampStyle(
        stamp_text=template, text_box_style=_text_style(fonts, template % params),
        inner_content_layout=_bottom_line(), background=PdfImage(image), background_opacity=1.0, border_width=0,
        background_layout=layout.SimpleBoxLayoutRule(
            x_align=layout.AxisAlignment.ALIGN_MID, y_align=layout.AxisAlignment.ALIGN_MID,
            margins=layout.Margins(left=2, right=2, top=2, bottom=TEXT_SIZE + 4)))
    meta = PdfSignatureMetadata(field_name=field_name, subfilter=pdf_fields.SigSeedSubFilter.PADES,
                                md_algorithm="sha256", reason=reason, name=signer_name.strip())
    signer = PdfSigner(meta, _signer(credential), timestamper=timestamper, stamp_style=style)
    return _run(signer, writer, existing_fields_only=True, text_params=params)


def countersign_lessor(pdf: bytes, lessor: Credential, field_name: str, timestamper: TimeStamper | None = None,
                       *, fonts: StampFonts | None = None, reason: str = LESSOR_REASON,
                       now: dt.datetime | None = None) -> bytes:
    """The lessor's PAdES approval signature in its prepared field ``field_name``: a framed text appearance
    "出租人：<name>" over the time, in the CJK stamp font (``fonts`` as for :func:`sign_lessee`)."""
    writer = _writer(pdf)
    params = {"signer": lessor.common_name, "when": _stamp_time(now)}
    template = "出租人：%(signer)s\n%(when)s"
    style = TextStampStyle(stamp_text=template, text_box_style=_text_style(fonts, template % params, LESSOR_TEXT_SIZE),
                           border_width=1, border_color=(0.75, 0.1, 0.1))
    meta = PdfSignatureMetadata(field_name=field_name, subfilter=pdf_fields.SigSeedSubFilter.PADES,
                                md_algorithm="sha256", reason=reason)
    signer = PdfSigner(meta, _signer(lessor), timestamper=timestamper, stamp_style=style)
    return _run(signer, writer, existing_fields_only=True, text_params=params)
