"""The CJK fonts of the signature stamps: one face of Debian's Noto Sans CJK, prepared once, cached in memory.

pyHanko embeds a subset of an OpenType font through ``GlyphAccumulatorFactory`` (HarfBuzz shaping, fontTools
subsetting), which reads a single ``.otf``/``.ttf``, not a ``.ttc`` collection: so the Simplified Chinese face
is extracted with fontTools into the CA directory, once (:func:`prepare_stamp_fonts`).

Speed. pyHanko parses and subsets the whole font for every stamp. For the 65 000-glyph face that is ~0.9 s a
signature, ~0.6 s of it decompiling the OpenType layout tables (GSUB/GPOS) that its subsetter then drops.
Two files are therefore made on first run:

``NotoSansCJKsc-Regular.otf``
    the whole face minus its layout and vertical-metrics tables (:data:`DROPPED_TABLES`; a horizontal line
    of Chinese, digits and Latin needs no kerning or vertical forms): every character, ~0.25 s a stamp.
``NotoSansCJKsc-Regular-common.otf``
    the same restricted to :func:`common_repertoire` (GB 2312's 6 763 hanzi and symbols, Latin-1, general
    punctuation: ~7 800 characters): ~0.04 s a stamp. Making it takes ~7 s, once per CA directory.

:meth:`StampFonts.for_text` picks the common file when it covers the text and the full one otherwise (a
name with 喆, 堃 or 䶮 still renders, just slower). :class:`CachedFontFactory` keeps the font bytes in memory
and hands pyHanko a fresh ``BytesIO`` per signature: pyHanko's own factory re-reads the file on every stamp
and never closes it (a ``ResourceWarning`` each time).
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pyhanko.pdf_utils.font.opentype import GlyphAccumulator
from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
from pyhanko.pdf_utils.writer import BasePdfFileWriter

from infra.keyfiles import create_once

NOTO_CJK_TTC = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
FACE_POSTSCRIPT_NAME = "NotoSansCJKsc-Regular"
#: dropped from the extracted face: pyHanko's subsetter drops GSUB/GPOS/GDEF anyway, but fontTools still
#: decompiles them for every stamp
DROPPED_TABLES = ("GSUB", "GPOS", "GDEF", "BASE", "VORG", "vhea", "vmtx")


class StampFontError(RuntimeError):
    """The stamp font cannot be found or extracted (install Debian's fonts-noto-cjk)."""


@cache
def common_repertoire() -> frozenset[int]:
    """Code points of the fast stamp font: GB 2312 (as Python's codec maps it), Latin-1, general punctuation."""
    points = set(range(0x20, 0x100)) | set(range(0x2000, 0x2070))
    for cp in range(0x80, 0x10000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        try:
            chr(cp).encode("gb2312")
        except UnicodeEncodeError:
            continue
        points.add(cp)
    return frozenset(points)


def _extract_face(collection: Path, postscript_name: str) -> bytes:
    from fontTools.ttLib import TTCollection

    if not collection.exists():
        raise StampFontError(f"{collection} not found: apt-get install fonts-noto-cjk")
    ttc = TTCollection(str(collection), lazy=True)
    try:
        for face in ttc.fonts:
            if face["name"].getDebugName(6) == postscript_name:
                for tag in DROPPED_TABLES:
                    if tag in face:
                        del face[tag]
                out = io.BytesIO()
                face.save(out)
                return out.getvalue()
    finally:
        ttc.close()
    raise StampFontError(f"{collection} has no face named {postscript_name}")


def _subset(full: bytes, repertoire: frozenset[int]) -> bytes:
    from fontTools import subset
    from fontTools.ttLib import TTFont

    font = TTFont(io.BytesIO(full), recalcBBoxes=False, recalcTimestamp=False)
    options = subset.Options()
    options.layout_features = []
    options.name_IDs = ["*"]
    options.notdef_outline = True
    # keep the full face's metrics: recomputing bounds runs every charstring (minutes, not seconds)
    options.recalc_bounds = False
    options.recalc_timestamp = False
    options.recalc_max_context = False
    options.recalc_average_width = False
    options.prune_unicode_ranges = False
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(repertoire))
    subsetter.subset(font)
    out = io.BytesIO()
    font.save(out)
    font.close()
    return out.getvalue()


@dataclass(frozen=True)
class StampFonts:
    """The two stamp font files (see the module docstring)."""

    full: Path
    common: Path

    def for_text(self, text: str) -> Path:
        """The common (fast) font if it has every character of ``text``, else the full face."""
        repertoire = common_repertoire()
        if all(ord(ch) in repertoire or ch in "\n\r\t" for ch in text):
            return self.common
        return self.full


def prepare_stamp_fonts(directory: Path, collection: Path = NOTO_CJK_TTC,
                        postscript_name: str = FACE_POSTSCRIPT_NAME) -> StampFonts:
    """The stamp fonts in ``directory``, made from ``collection`` the first time (race-safe, once each)."""
    directory = Path(directory)
    full_path = directory / f"{postscript_name}.otf"
    common_path = directory / f"{postscript_name}-common.otf"
    if not full_path.exists():
        create_once(full_path, lambda: _extract_face(collection, postscript_name), "stamp font")
    if not common_path.exists():
        create_once(common_path, lambda: _subset(font_bytes(full_path), common_repertoire()), "stamp font")
    return StampFonts(full=full_path, common=common_path)


_cache: dict[Path, bytes] = {}
_cache_lock = threading.Lock()


def font_bytes(path: Path) -> bytes:
    """The bytes of ``path``, read once per process (font files are never rewritten in place)."""
    path = Path(path).resolve()
    with _cache_lock:
        data = _cache.get(path)
        if data is None:
            data = _cache[path] = path.read_bytes()
        return data


@dataclass(frozen=True)
class CachedFontFactory(GlyphAccumulatorFactory):
    """``GlyphAccumulatorFactory`` that reads the font once per process and leaves no file open."""

    def create_font_engine(self, writer: BasePdfFileWriter, obj_stream: object = None) -> GlyphAccumulator:
        if obj_stream is None and writer.stream_xrefs and self.create_objstream_if_needed:
            obj_stream = writer.prepare_object_stream()
        return GlyphAccumulator(writer=writer, font_handle=io.BytesIO(font_bytes(Path(self.font_file))),
                                font_size=self.font_size, ot_script_tag=self.ot_script_tag,
                                ot_language_tag=self.ot_language_tag, writing_direction=self.writing_direction,
                                bcp47_lang_code=self.bcp47_lang_code, obj_stream=obj_stream)
