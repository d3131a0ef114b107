"""Access to the services wired by :mod:`bff.bootstrap` for the current app."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app

if TYPE_CHECKING:
    from bff.bootstrap import Services


def services() -> Services:
    """The current app's services (built once in ``create_app``)."""
    return current_app.extensions["leaseline"]  # type: ignore[no-any-return]
