"""Secret files made on first run (development keys in var/): private from the start, never overwritten."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


def create_once(path: Path, make: Callable[[], bytes], what: str) -> bytes:
    """The bytes of ``path``, written with ``make()`` first if it does not exist yet.

    Race-safe: the content goes to a private temporary file (``O_EXCL``, 0600) in the same directory, then
    is published with ``link()``, which fails if ``path`` already exists, so concurrent first runs agree
    on one file and nobody reads a half-written one. An existing file is never overwritten; one readable by
    others is reported (``what`` names it in the warning).
    """
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # O_EXCL, mode 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(make())
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:  # another process published its file first: use that one
                pass
        finally:
            os.unlink(tmp)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning("%s file %s is readable by others (mode %o): chmod 600 it", what, path, mode)
    return path.read_bytes()
