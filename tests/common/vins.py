"""VINs for tests: one car is leased once (walk-through finding 6), so every application that goes past its draft
with a VIN needs a car of its own in the suite's shared database."""

from __future__ import annotations

import secrets

from kyc.vin import vin_check_digit


def fresh_vin(wmi: str = "LSV") -> str:
    """A valid VIN (its check digit computed: kyc/vin.py) no other call returned, in all likelihood (10**7 serials).
    Its check digit is never 0, so that a 0 put in its place (``vin[:8] + "0" + vin[9:]``) makes a wrong one."""
    while True:
        vin = f"{wmi}AU2180N{secrets.randbelow(10**7):07d}"
        digit = vin_check_digit(vin)
        if digit != "0":
            return vin[:8] + digit + vin[9:]
