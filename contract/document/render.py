"""The lease contract and its vehicle handover record as PDF (WeasyPrint, Noto CJK), and page images for the
phone (poppler's pdftoppm).

:func:`render` lays out ``templates/contract.html`` (Jinja, autoescaped) with ``templates/contract.css`` and
returns the PDF, its page count and where the lessee's and the lessor's signature boxes landed, in PDF
points, so a signer can put visible signature fields exactly there (pyHanko ``SigFieldSpec(on_page=page,
box=box)``). :func:`render_handover` does the same for ``templates/handover.html``: one engine, the same fonts,
``contract.css`` with the record's own ``handover.css`` after it, and the same signature-box ids.

The contract's text is ``templates/contract_text.html`` (:func:`render_text`): ``contract.html`` prints it as it is,
inside the watermark, with its SHA-256 above the title (:func:`text_sha256`), so that the text handed out for
reading on a phone can be checked against the PDF (:func:`stated_text_sha256` reads the printed one back).

WeasyPrint costs about a second to import and its fonts another few hundred milliseconds on first use:
call :func:`warm_up` once at start-up; the module keeps the engine (font configuration, parsed stylesheet).
WeasyPrint does not document thread safety (Pango and fontconfig objects are shared), so one layout runs at
a time per process; scale with processes. Fonts: Debian's ``fonts-noto-cjk``; subsetting needs HarfBuzz's
subset library (Debian ``libharfbuzz-subset0``), without which WeasyPrint falls back to fontTools and a CJK
font takes ~20 s to subset (:func:`warm_up` refuses to start without it).
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import datetime
from decimal import ROUND_HALF_UP
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment
from jinja2 import FileSystemLoader
from jinja2 import StrictUndefined
from markupsafe import Markup

from contract.document.handover import HandoverData
from contract.document.model import ContractData
from contract.document.servicing import ServicingData
from kyc.masking import mask_name
from plans.money import fen
from plans.money import format_cny

TEMPLATES = Path(__file__).resolve().parent / "templates"
BEIJING = ZoneInfo("Asia/Shanghai")
#: CSS px (1/96 in) to PDF points (1/72 in): WeasyPrint writes 1 px as 0.75 pt (weasyprint/pdf/__init__.py).
PX_TO_PT = 0.75
#: The ids of the empty signature boxes in the template, by signer.
SIGNATURE_IDS = {"lessee": "sig-lessee", "lessor": "sig-lessor"}
#: the boxes of a document the lessor issues alone (contract.document.servicing)
LESSOR_ONLY = ("lessor",)
#: Fonts the stylesheet names; warm_up checks they are the ones actually used.
FONT_FAMILIES = ("Noto Serif CJK SC", "Noto Sans CJK SC")

_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_UNITS = ("", "拾", "佰", "仟")
_SECTIONS = ("", "万", "亿")  # groups of four digits
_LIMIT = Decimal("1000000000000")  # below 1 万亿, so three groups suffice


class RenderError(RuntimeError):
    """The PDF or its page images could not be produced (missing fonts or libraries, poppler failed)."""


class TextUnreadable(RenderError):
    """The fingerprint a PDF prints could not be read (pdftotext failed, timed out or is missing): the reading copy
    is unavailable for now, which is not a failure of the service as a whole (:func:`stated_text_sha256`)."""


# ------------------------------------------------------------------------------------------ formatting


def cny_upper(amount: Decimal) -> str:
    """An amount in capital Chinese numerals as banks require (人民币大写), e.g. ``人民币壹仟陆佰捌拾元零叁角贰分``.

    Follows the PBOC rules for filling in bills (《正确填写票据和结算凭证的基本规定》): 整 after 元 when there
    are no 角 and 分, none after 角; one 零 for a run of zeros inside a number; 零 after 元 when the 元 digit or
    the 角 digit is 0 and what follows is not; where a run of zeros ends at 万 or 亿 and the next digit is not
    0 the 零 is optional and left out (their example ``¥107,000.53 → 人民币壹拾万柒仟元零伍角叁分``).
    """
    value = fen(amount)
    if value < 0 or value >= _LIMIT:
        raise ValueError(f"cannot write {value} in capital numerals")
    cents = int(value * 100)
    yuan, jiao, fen_ = cents // 100, cents // 10 % 10, cents % 10
    parts: list[str] = []
    digits = str(yuan) if yuan else ""
    zero = False
    for i, ch in enumerate(digits):
        power = len(digits) - 1 - i
        if ch == "0":
            zero = True
        else:
            if zero:
                parts.append("零")
                zero = False
            parts.append(_DIGITS[int(ch)] + _UNITS[power % 4])
        if power % 4 == 0 and power > 0 and int(digits[max(0, i - 3): i + 1]):
            parts.append(_SECTIONS[power // 4])
            zero = False
    if yuan:
        parts.append("元")
    if not jiao and not fen_:
        parts.append("整" if yuan else "零元整")
    else:
        if jiao:
            if yuan and digits[-1] == "0":
                parts.append("零")
            parts.append(_DIGITS[jiao] + "角")
        elif yuan:
            parts.append("零")
        if fen_:
            parts.append(_DIGITS[fen_] + "分")
    return "人民币" + "".join(parts)


def percent(rate: Decimal, places: int = 2) -> str:
    """A fraction as a percentage rounded half-up to ``places`` decimals: ``0.071234`` → ``7.12%``."""
    shown = (rate * 100).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return f"{shown}%"


def exact_percent(rate: Decimal) -> str:
    """A contractual rate in full, at least two decimals: ``0.0005`` → ``0.05%``, ``0.00035`` → ``0.035%``."""
    text = f"{rate * 100:f}"
    whole, _, decimals = text.partition(".")
    decimals = decimals.rstrip("0").ljust(2, "0")
    return f"{whole}.{decimals}%"


def cn_date(day: date) -> str:
    """``2026年12月25日``."""
    return f"{day.year}年{day.month}月{day.day}日"


def beijing_time(moment: datetime) -> str:
    """``2026-11-25 20:01 北京时间`` (Asia/Shanghai) for an aware date-time."""
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M") + " 北京时间"


_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(money=format_cny, upper=cny_upper, pct=percent, exact_pct=exact_percent, cn_date=cn_date)


def render_text(data: ContractData) -> str:
    """The contract's text (``templates/contract_text.html``) as HTML, after :meth:`ContractData.reconcile`: what
    the PDF prints but its watermark, running header and footer and fingerprint, so the draft and the final text
    (the same data, ``signed`` aside) have the same text. :func:`render_html` prints exactly this string."""
    data.reconcile()
    return _env.get_template("contract_text.html").render(
        c=data, plan=data.plan, rows=data.schedule, generated=beijing_time(data.generated_at))


def text_sha256(text: str) -> str:
    """The text's fingerprint: SHA-256 (hex) of its UTF-8 bytes, printed on the PDF's first page."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def render_html(data: ContractData) -> str:
    """The contract as HTML (the input of the PDF): :func:`render_text` with the watermark and the text's
    fingerprint around it."""
    text = render_text(data)
    return _env.get_template("contract.html").render(
        c=data,
        text=Markup(text),  # our own template's output, escaped as it was rendered
        text_sha256=text_sha256(text),
        watermark={"number": data.number, "name": mask_name(data.lessee.name),
                   "time": beijing_time(data.generated_at), "draft": not data.signed},
        generated_iso=data.generated_at.isoformat(timespec="seconds"),
    )


#: how the PDF states the fingerprint (templates/contract.html), as poppler's pdftotext reads it back
STATED_FINGERPRINT = re.compile(r"正文指纹 SHA-256：\s*([0-9a-f]{64})")


def stated_text_sha256(pdf: bytes, timeout: float = 30.0) -> str | None:
    """The text fingerprint a contract PDF prints on its first page (poppler's ``pdftotext``), or None for a PDF
    that prints none (a contract generated before the fingerprint). Raises :class:`TextUnreadable` when pdftotext
    fails or is not installed."""
    with tempfile.TemporaryDirectory(prefix="contract-text-") as tmp:
        source = Path(tmp) / "contract.pdf"
        source.write_bytes(pdf)
        # -nodiag: without the diagonal watermark, which may cross the first lines
        command = ["pdftotext", "-nodiag", "-enc", "UTF-8", "-f", "1", "-l", "1", str(source), "-"]
        try:
            done = subprocess.run(command, check=True, capture_output=True, timeout=timeout)
        except FileNotFoundError:
            raise TextUnreadable("pdftotext not found (Debian: apt-get install poppler-utils)") from None
        except subprocess.TimeoutExpired:
            raise TextUnreadable(f"pdftotext took longer than {timeout:g} s") from None
        except subprocess.CalledProcessError as exc:
            message = exc.stderr.decode("utf-8", "replace").strip()[:500]
            raise TextUnreadable(f"pdftotext failed ({exc.returncode}): {message}") from None
    found = STATED_FINGERPRINT.search(done.stdout.decode("utf-8", "replace"))
    return found.group(1) if found else None


def render_handover_html(data: HandoverData) -> str:
    """The handover record as HTML (the input of its PDF), after the contract's :meth:`ContractData.reconcile`."""
    data.contract.reconcile()
    return _env.get_template("handover.html").render(h=data, c=data.contract, plan=data.contract.plan)


# ------------------------------------------------------------------------------------------ the engine


@dataclass(frozen=True)
class SignatureBox:
    """Where one signature box is: ``page`` is the 0-based page index (pyHanko ``SigFieldSpec(on_page=…)``),
    ``x1, y1, x2, y2`` the rectangle in PDF points with the origin at the page's bottom left
    (``SigFieldSpec(box=…)``)."""

    page: int
    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def box(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)


@dataclass(frozen=True)
class Rendered:
    pdf: bytes
    pages: int
    signature_boxes: dict[str, SignatureBox]


@dataclass(frozen=True)
class _Engine:
    html: Any  # weasyprint.HTML
    stylesheet: Any  # weasyprint.CSS of contract.css, parsed once: every document's page, fonts, tables, boxes
    font_config: Any  # weasyprint.text.fonts.FontConfiguration, shared by the stylesheet and every render
    url_fetcher: Any  # refuses every URL: the contract needs no external resource
    fetch_refused: type[BaseException]  # weasyprint.urls.FatalURLFetchingError (a BaseException)
    css: Any  # weasyprint.CSS, to parse a document's own stylesheet
    #: a document's own stylesheets (applied after contract.css), parsed on first use, by file name
    own_sheets: dict[str, Any] = field(default_factory=dict)

    def own_stylesheet(self, name: str) -> Any:
        """``templates/<name>`` parsed once with the engine's fonts and fetcher (under the render lock: parsing
        registers its fonts in the shared font configuration)."""
        with _render_lock:
            sheet = self.own_sheets.get(name)
            if sheet is None:
                sheet = self.own_sheets[name] = self.css(filename=str(TEMPLATES / name), font_config=self.font_config,
                                                         url_fetcher=self.url_fetcher)
            return sheet


_engine: _Engine | None = None
_engine_lock = threading.Lock()
_render_lock = threading.Lock()


def _build_engine() -> _Engine:
    # (its import sets PIL's process-wide LOAD_TRUNCATED_IMAGES; kyc.images.strict_decoding puts it back)
    import weasyprint
    from weasyprint.text import ffi as weasy_ffi
    from weasyprint.text.fonts import FontConfiguration
    from weasyprint.urls import FatalURLFetchingError

    if not weasy_ffi.harfbuzz_subset:
        raise RenderError("HarfBuzz's subset library is missing (Debian: apt-get install libharfbuzz-subset0); "
                          "WeasyPrint would subset the CJK fonts with fontTools, ~20 s a font")
    font_config = FontConfiguration()
    # Only data: URLs would be allowed; the template uses none. fail_on_errors turns any fetch into an error
    # instead of a warning and a silently missing resource.
    url_fetcher = weasyprint.URLFetcher(allowed_protocols=("data",), fail_on_errors=True)
    stylesheet = weasyprint.CSS(filename=str(TEMPLATES / "contract.css"), font_config=font_config,
                                url_fetcher=url_fetcher)
    engine = _Engine(weasyprint.HTML, stylesheet, font_config, url_fetcher, FatalURLFetchingError, weasyprint.CSS)
    # Lay out and write a small document in both faces so Pango and fontconfig load the CJK fonts now.
    probe = ('<html lang="zh-CN"><body><p style="font-family: \'Noto Serif CJK SC\'">融资租赁合同 ¥1,234.56</p>'
             '<p style="font-family: \'Noto Sans CJK SC\'; font-weight: bold">年化利率（单利）7.12%</p></body></html>')
    document = engine.html(string=probe, url_fetcher=url_fetcher).render(font_config=font_config)
    document.write_pdf()
    used = {font.family for font in document.fonts.values()}
    missing = [family for family in FONT_FAMILIES if family not in used]
    if missing:
        raise RenderError(f"fonts not found: {', '.join(missing)} (Debian: apt-get install fonts-noto-cjk); "
                          f"used instead: {', '.join(sorted(used)) or 'none'}")
    return engine


#: poppler's tools the service runs: the page images (pdftoppm) and the fingerprint a PDF prints (pdftotext)
POPPLER = ("pdftoppm", "pdftotext")


def warm_up() -> None:
    """Import WeasyPrint, parse the stylesheet and load the CJK fonts (≈1.5 s once per process), and find poppler.

    Raises :class:`RenderError` when the fonts, HarfBuzz's subset library or poppler's tools are missing: a service
    without them would start and then fail every page image and reading copy.
    """
    require_tools()
    _get_engine()


def require_tools() -> None:
    """Raise :class:`RenderError` naming poppler's tools that are missing (checked before a service starts)."""
    missing = [tool for tool in POPPLER if shutil.which(tool) is None]
    if missing:
        raise RenderError(f"{', '.join(missing)} not found (Debian: apt-get install poppler-utils)")


def _get_engine() -> _Engine:
    global _engine
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                _engine = _build_engine()
    return _engine


def signature_boxes(document: Any, signers: tuple[str, ...] = tuple(SIGNATURE_IDS)) -> dict[str, SignatureBox]:
    """The signature boxes of a laid-out WeasyPrint ``Document``, by signer (``lessee``, ``lessor``).

    WeasyPrint's public anchors give only an element's top-left corner, so this walks each page's boxes
    (``Page._page_box``, WeasyPrint ≤ 70) for the elements with the template's ids and takes their border box,
    converting CSS px (top-left origin) to PDF points (bottom-left origin). A box split over two pages or
    missing raises :class:`RenderError`.
    """
    wanted = {element_id: signer for signer, element_id in SIGNATURE_IDS.items() if signer in signers}
    found: dict[str, SignatureBox] = {}
    for index, page in enumerate(document.pages):
        page_height_pt = page.height * PX_TO_PT
        for box in page._page_box.descendants():
            element = box.element
            element_id = element.get("id") if element is not None else None
            signer = wanted.get(element_id) if element_id else None
            if signer is None or box.element_tag != element.tag:
                continue
            if signer in found:
                if found[signer].page != index:
                    raise RenderError(f"the {signer}'s signature box is split over two pages")
                continue  # an inner box of the same element (the first one met is the outermost)
            x, y = box.border_box_x(), box.border_box_y()
            width, height = box.border_width(), box.border_height()
            found[signer] = SignatureBox(
                page=index,
                x1=round(x * PX_TO_PT, 2),
                y1=round(page_height_pt - (y + height) * PX_TO_PT, 2),
                x2=round((x + width) * PX_TO_PT, 2),
                y2=round(page_height_pt - y * PX_TO_PT, 2),
            )
    missing = sorted(set(signers) - set(found))
    if missing:
        raise RenderError(f"signature boxes not found in the layout: {', '.join(missing)}")
    return found


def render(data: ContractData) -> Rendered:
    """Render ``data`` (reconciled first) to PDF; see the module docstring. Raises ContractDataError, RenderError."""
    return layout(render_html(data))


def render_handover(data: HandoverData) -> Rendered:
    """The handover record to PDF, laid out by the contract's engine with ``handover.css`` after ``contract.css``;
    its signature boxes are found as the contract's are. Raises ContractDataError, RenderError."""
    return layout(render_handover_html(data), own_stylesheet="handover.css")


def render_servicing(data: ServicingData) -> Rendered:
    """A servicing document (a settlement certificate, a schedule annex: ``templates/<kind>.html``) to PDF with
    ``servicing.css``; the lessor signs it alone, so it holds the lessor's box only (:data:`LESSOR_ONLY`)."""
    return layout(render_servicing_html(data), own_stylesheet="servicing.css", signers=LESSOR_ONLY)


def render_servicing_html(data: ServicingData) -> str:
    """A servicing document as HTML (the input of its PDF), after the contract's :meth:`ContractData.reconcile`."""
    data.contract.reconcile()
    return _env.get_template(f"{data.request.kind}.html").render(d=data, c=data.contract)


def layout(html: str, own_stylesheet: str | None = None,
           signers: tuple[str, ...] = tuple(SIGNATURE_IDS)) -> Rendered:
    """Lay out one of our documents' HTML with ``contract.css`` (then ``own_stylesheet``, from the templates) and
    write its PDF; the document must hold the signature boxes of ``signers`` (:data:`SIGNATURE_IDS`: both)."""
    engine = _get_engine()
    sheets = [engine.stylesheet, *([engine.own_stylesheet(own_stylesheet)] if own_stylesheet else [])]
    with _render_lock:
        try:
            document = engine.html(string=html, base_url=str(TEMPLATES), url_fetcher=engine.url_fetcher).render(
                font_config=engine.font_config, stylesheets=sheets)
        except engine.fetch_refused as exc:  # the template asked for an external resource
            raise RenderError(str(exc)) from None
        boxes = signature_boxes(document, signers)
        pdf = document.write_pdf()
    return Rendered(pdf=pdf, pages=len(document.pages), signature_boxes=boxes)


def render_pdf(data: ContractData) -> bytes:
    """The contract PDF alone."""
    return render(data).pdf


# ------------------------------------------------------------------------------------------ page images


#: Palette size of the page images: black text, grey anti-aliasing, the red APR box and the faint watermark fit
#: in 64 colours with no visible loss, and the PNGs are a third of the full-colour size.
PAGE_IMAGE_COLOURS = 64


def page_images(pdf: bytes, dpi: int = 110, timeout: float = 60.0) -> list[bytes]:
    """One PNG per page at ``dpi``, for the phone's review screen.

    Poppler's ``pdftoppm`` rasterises (in a private temporary directory, with a timeout); Pillow writes each
    page as a 64-colour palette PNG, which is ~4× faster than ``pdftoppm -png`` (its PNG encoder takes
    ~0.25 s a page) and a third of the size. Raises :class:`RenderError` when pdftoppm fails, times out or is
    not installed (Debian ``poppler-utils``).
    """
    from PIL import Image

    if not 30 <= dpi <= 600:
        raise ValueError("dpi must be between 30 and 600")
    with tempfile.TemporaryDirectory(prefix="contract-pages-") as tmp:
        folder = Path(tmp)
        source = folder / "contract.pdf"
        source.write_bytes(pdf)
        command = ["pdftoppm", "-r", str(dpi), str(source), str(folder / "page")]
        try:
            subprocess.run(command, check=True, capture_output=True, timeout=timeout)
        except FileNotFoundError:
            raise RenderError("pdftoppm not found (Debian: apt-get install poppler-utils)") from None
        except subprocess.TimeoutExpired:
            raise RenderError(f"pdftoppm took longer than {timeout:g} s") from None
        except subprocess.CalledProcessError as exc:
            message = exc.stderr.decode("utf-8", "replace").strip()[:500]
            raise RenderError(f"pdftoppm failed ({exc.returncode}): {message}") from None
        # page-1.ppm … page-N.ppm, zero-padded to the width of N: sort by the number, not the text
        pages = sorted(folder.glob("page-*.ppm"), key=lambda p: int(p.stem.rpartition("-")[2]))
        if not pages:
            raise RenderError("pdftoppm produced no pages")
        images: list[bytes] = []
        for page in pages:
            with Image.open(page) as image:
                palette = image.quantize(colors=PAGE_IMAGE_COLOURS, method=Image.Quantize.FASTOCTREE)
            out = io.BytesIO()
            palette.save(out, format="PNG", compress_level=6)
            images.append(out.getvalue())
        return images
