"""The credit bureau (征信报送, issue 18 §7): the ``CreditBureau`` port and its embedded default, a clearly named
sandbox that reports nothing to anyone.

A real adapter submits to the PBOC Credit Reference Center (金融信用信息基础数据库) through the line the lessor is given
as a reporting institution, or to a licensed personal credit bureau (百行征信, 朴道征信); their interfaces are
published to connected institutions only, so none is built here, and the file's layout is provisional
(servicing/credit_report.py ``LAYOUT``). Whatever the adapter, the port is the same: a month's file and a key that is
the same for every try of that month, so that a retry after a lost answer gets the first answer back and the month is
never submitted twice.

**The sandbox** (:class:`SandboxCreditBureau`) keeps what it received under a directory of its own (by default
``<var dir>/credit_bureau_sandbox``, mode 0700, files 0600: it holds names and ID numbers, as the bureau would), and
answers as a bureau does, per record:

- a file that is not the layout's JSON, or names another period, is refused whole (:class:`CreditBureauRefused`);
- each record without a name is rejected ``SBX101``, without an ID number ``SBX102``, with an ID number that is not
  18 characters (17 digits and a digit or X) ``SBX103``, without an account id ``SBX104``; the others are accepted;
- the same key again returns the first receipt (batch number and all) and stores nothing more, whatever the file.

The codes are the sandbox's own, not the bureau's.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from typing import Protocol


@dataclass(frozen=True)
class RecordError:
    """A record the bureau rejected: its account id (the contract number), the code and the bureau's words."""

    account_id: str
    code: str
    message: str


@dataclass(frozen=True)
class Receipt:
    """The bureau's answer to a month's file: its batch number, how many records it accepted, each one it rejected."""

    batch_no: str
    accepted: int
    rejected: tuple[RecordError, ...]


class CreditBureauUnavailable(Exception):
    """The bureau could not be reached or did not answer: nothing is known to be received; try again, same key."""


class CreditBureauRefused(Exception):
    """The bureau refused the whole file (its layout, its period)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class CreditBureau(Protocol):
    def submit(self, period: str, file_bytes: bytes, key: str) -> Receipt:
        """Submit the file of ``period`` (YYYY-MM) under ``key``: the same key returns the receipt of its first
        submission and submits nothing again. Raises CreditBureauUnavailable or CreditBureauRefused."""
        ...


_ID_NUMBER = re.compile(r"\d{17}[\dX]")
_KEY_FILE = re.compile(r"[0-9a-f]{64}\.json")


class SandboxCreditBureau:
    """The sandbox bureau: receives and answers (see the module's docstring), never reports anything anywhere."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _dirs(self) -> tuple[Path, Path]:
        keys, received = self.root / "receipts", self.root / "received"
        for d in (self.root, keys, received):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        return keys, received

    def submit(self, period: str, file_bytes: bytes, key: str) -> Receipt:
        if not key:
            raise ValueError("a submission needs its key")
        keys, received = self._dirs()
        key_file = keys / f"{hashlib.sha256(key.encode()).hexdigest()}.json"
        if key_file.exists():
            return _receipt(json.loads(key_file.read_text(encoding="utf-8")))
        try:
            document = json.loads(file_bytes.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise CreditBureauRefused("SBX001", "the file is not UTF-8 JSON") from None
        if not isinstance(document, dict) or not isinstance(document.get("records"), list):
            raise CreditBureauRefused("SBX002", "the file has no records list")
        if document.get("period") != period:
            raise CreditBureauRefused("SBX003", f"the file is of {document.get('period')!r}, not {period}")
        accepted, rejected = 0, []
        for record in document["records"]:
            error = _check(record if isinstance(record, dict) else {})
            if error is None:
                accepted += 1
            else:
                rejected.append(error)
        batch_no = f"SBX{period.replace('-', '')}{hashlib.sha256(key.encode()).hexdigest()[:10].upper()}"
        receipt = Receipt(batch_no, accepted, tuple(rejected))
        try:
            _write_once(received / f"{batch_no}.json", file_bytes)
        except FileExistsError:  # a try that stopped before its receipt: the first file stands
            pass
        try:
            _write_once(key_file, json.dumps(asdict(receipt), ensure_ascii=False).encode("utf-8"))
        except FileExistsError:  # the same key submitted at the same moment: the first answer stands
            return _receipt(json.loads(key_file.read_text(encoding="utf-8")))
        return receipt

    def received(self, batch_no: str) -> dict[str, Any]:
        """The file the sandbox received as batch ``batch_no`` (tests)."""
        if not re.fullmatch(r"SBX\d{6}[0-9A-F]{10}", batch_no):
            raise KeyError(batch_no)
        return json.loads((self.root / "received" / f"{batch_no}.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]

    def submissions(self) -> int:
        """How many distinct keys the sandbox has received (tests)."""
        folder = self.root / "receipts"
        return sum(1 for p in folder.iterdir() if _KEY_FILE.fullmatch(p.name)) if folder.exists() else 0


def _check(record: dict[str, Any]) -> RecordError | None:
    account = str(record.get("account_id") or "")
    if not account.strip():
        return RecordError("", "SBX104", "account id missing")
    if not str(record.get("name") or "").strip():
        return RecordError(account, "SBX101", "name missing")
    id_number = str(record.get("id_number") or "").strip()
    if not id_number:
        return RecordError(account, "SBX102", "ID number missing")
    if not _ID_NUMBER.fullmatch(id_number):
        return RecordError(account, "SBX103", "ID number malformed")
    return None


def _receipt(stored: dict[str, Any]) -> Receipt:
    return Receipt(str(stored["batch_no"]), int(stored["accepted"]),
                   tuple(RecordError(str(e["account_id"]), str(e["code"]), str(e["message"]))
                         for e in stored["rejected"]))


def _write_once(path: Path, content: bytes) -> None:
    """Write ``path`` (mode 0600) whole or not at all, unless it exists (FileExistsError): written aside, then linked
    into place (a reader never sees half of it; of two writers at once, one wins)."""
    aside = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.link(aside, path)
    finally:
        aside.unlink(missing_ok=True)
