"""SeaweedFS for the tests: a real S3 server on a free loopback port (RECIPES.md), one per session.

tests/conftest.py wires it as a fixture::

    from tests.common.s3 import seaweed

    @pytest.fixture(scope="session")
    def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
        yield from seaweed(tmp_path_factory)
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from infra.peers import SeaweedS3


def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """A started SeaweedS3 with fresh random credentials in a temporary directory, stopped afterwards."""
    peer = SeaweedS3(tmp_path_factory.mktemp("seaweedfs"), access_key=f"test{secrets.token_hex(6)}",
                     secret_key=secrets.token_urlsafe(32))
    with peer:
        yield peer
