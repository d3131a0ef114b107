"""Domain errors of the signing layer; the contract service's web layer maps them to problem+json."""

from __future__ import annotations


class SigningLayerError(Exception):
    """Base class of the errors below."""


class NotAPdf(SigningLayerError, ValueError):
    """The bytes given are not a PDF pyHanko can read (empty, truncated, another format, broken xref)."""


class NoSignatures(SigningLayerError, ValueError):
    """The PDF is readable but has no filled signature field."""


class SigningFailed(SigningLayerError):
    """A signature could not be made: unknown or already signed field, certification not first, bad image."""
