"""TOTP codes for tests that sign the same lessor account in again and again.

The BFF accepts each 30-second time step of an account once (RFC 6238 §5.2), one step either side of now. A
test asking ``pyotp.TOTP(secret).now()`` twice within 30 seconds for one account would be refused the second
time, so tests take their codes here: the current step, then the next one (accepted one step early), and only
when both are used, the following step once it is current. The steps used are remembered per account for the
whole test process (several apps may share one database, so per server would not be enough).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC
from datetime import datetime

import pyotp

from bff.demo import DEMO_TOTP_SECRET

_used: dict[str, int] = {}
_lock = threading.Lock()


def fresh_code(account: str, secret: str = DEMO_TOTP_SECRET) -> str:
    """A code for ``account`` of a time step no earlier test of this process used; waits (at most 30 s) when the
    current and the next step are both used."""
    totp = pyotp.TOTP(secret)
    with _lock:
        while True:
            current = totp.timecode(datetime.now(UTC))
            step = max(current, _used.get(account, current - 1) + 1)
            if step <= current + 1:
                _used[account] = step
                return totp.generate_otp(step)
            time.sleep(totp.interval - time.time() % totp.interval + 0.05)  # until the next step begins
