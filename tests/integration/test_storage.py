"""S3ObjectStore against a real SeaweedFS (infra.peers.SeaweedS3): private, encrypted, versioned, expiring links."""

from __future__ import annotations

import hashlib
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config

from infra.peers import SeaweedS3
from infra.storage import ObjectNotFound
from infra.storage import S3ObjectStore
from infra.storage import StorageError
from infra.storage import StorageUnavailable
from infra.storage import object_key
from tests.common.s3 import seaweed

JPEG = "image/jpeg"


@pytest.fixture(scope="module")
def s3_peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    yield from seaweed(tmp_path_factory)


def make_store(peer: SeaweedS3, bucket: str, **kwargs: Any) -> S3ObjectStore:
    options: dict[str, Any] = {"endpoint_url": peer.endpoint_url, "bucket": bucket,
                               "access_key": peer.access_key, "secret_key": peer.secret_key, **kwargs}
    return S3ObjectStore(**options)


@pytest.fixture(scope="module")
def bucket() -> str:
    return f"leaseline-t-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def store(s3_peer: SeaweedS3, bucket: str) -> S3ObjectStore:
    store = make_store(s3_peer, bucket)
    store.ensure_bucket()
    return store


@pytest.fixture(scope="module")
def admin(s3_peer: SeaweedS3) -> Any:
    """A raw boto3 client, to look behind the adapter's back."""
    return boto3.client("s3", endpoint_url=s3_peer.endpoint_url, aws_access_key_id=s3_peer.access_key,
                        aws_secret_access_key=s3_peer.secret_key, region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}))


def key(name: str, kind: str = "id_card") -> str:
    return object_key(7, f"app-{uuid.uuid4().hex[:8]}", kind, name)


def all_versions(admin: Any, bucket: str, prefix: str) -> list[str]:
    page = admin.list_object_versions(Bucket=bucket, Prefix=prefix)
    return [v["VersionId"] for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]


def test_bucket_is_created_private_versioned_and_encrypted(s3_peer: SeaweedS3, admin: Any,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    name = f"leaseline-t-{uuid.uuid4().hex[:8]}"
    store = make_store(s3_peer, name)
    caplog.set_level("INFO", logger="infra.storage")
    report = store.ensure_bucket()
    assert report.created and report.versioning == "enabled" and report.default_encryption == "enabled"
    assert report.acl == "private"
    assert report.public_access_block.startswith("not supported")  # SeaweedFS 4.48 answers 501
    again = store.ensure_bucket()  # idempotent
    # what SeaweedFS lacks is said once, as information with what it means, not as a warning at every start
    said = [r for r in caplog.records if r.name == "infra.storage" and "public access block" in r.getMessage()
            and "BucketReport" not in r.getMessage()]
    assert [r.levelname for r in said] == ["INFO"] and "ACL" in said[0].getMessage(), said
    assert not [r for r in caplog.records if r.name == "infra.storage" and r.levelno >= 30]
    assert not again.created and again.versioning == "enabled"
    assert admin.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    rules = admin.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    grants = admin.get_bucket_acl(Bucket=name)["Grants"]
    assert all("URI" not in g["Grantee"] for g in grants)  # no AllUsers / AuthenticatedUsers grant


def test_ensure_bucket_revokes_a_public_acl(s3_peer: SeaweedS3, admin: Any) -> None:
    """SeaweedFS honours a public-read bucket ACL and has no public access block: ensure_bucket undoes it."""
    store = make_store(s3_peer, f"leaseline-t-{uuid.uuid4().hex[:8]}")
    store.ensure_bucket()
    k = key("front.jpg")
    store.put(k, b"photo", JPEG)
    admin.put_bucket_acl(Bucket=store.bucket, ACL="public-read")
    assert requests.get(f"{s3_peer.endpoint_url}/{store.bucket}/{k}", timeout=5).status_code == 200
    store.ensure_bucket()
    assert requests.get(f"{s3_peer.endpoint_url}/{store.bucket}/{k}", timeout=5).status_code == 403


def test_put_get_round_trip(store: S3ObjectStore) -> None:
    data = os.urandom(300_000)
    k = key("selfie.jpg", "selfie")
    stored = store.put(k, data, JPEG, {"capture": "liveness-1"})
    assert stored.key == k and stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.etag == hashlib.md5(data).hexdigest()
    assert stored.version_id
    assert store.get(k) == data


def test_objects_are_encrypted_at_rest(store: S3ObjectStore, s3_peer: SeaweedS3) -> None:
    data = os.urandom(200_000)
    k = key("back.jpg")
    store.put(k, data, JPEG, {"side": "back"})
    info = store.head(k)
    assert info.server_side_encryption == "AES256"
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.content_type == JPEG and info.size == len(data) and info.metadata["side"] == "back"
    # SeaweedFS really encrypts (not just echoes the header): the bytes appear in none of its files.
    needle = data[5000:5064]
    for path in Path(s3_peer.data_dir).rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert needle not in path.read_bytes(), path


def test_anonymous_requests_are_refused(store: S3ObjectStore, s3_peer: SeaweedS3) -> None:
    k = key("front.jpg")
    store.put(k, b"secret photo", JPEG)
    for url in (f"{s3_peer.endpoint_url}/{store.bucket}/{k}",  # the object
                f"{s3_peer.endpoint_url}/{store.bucket}",  # list the bucket
                f"{s3_peer.endpoint_url}/{store.bucket}?list-type=2",
                f"{s3_peer.endpoint_url}/"):  # list buckets
        response = requests.get(url, timeout=5)
        assert response.status_code == 403, url
        assert b"secret photo" not in response.content


def test_presigned_url_works_then_expires(store: S3ObjectStore) -> None:
    k = key("contract.pdf", "contract")
    store.put(k, b"%PDF-1.7 signed", "application/pdf")
    url = store.presigned_get(k)
    assert "X-Amz-Signature=" in url
    response = requests.get(url, timeout=5)
    assert response.status_code == 200 and response.content == b"%PDF-1.7 signed"
    short = store.presigned_get(k, expires_in=1)
    time.sleep(2)
    response = requests.get(short, timeout=5)
    assert response.status_code == 403 and b"expired" in response.content
    tampered = url.replace(k, k.replace("contract.pdf", "other.pdf"))
    assert requests.get(tampered, timeout=5).status_code == 403
    with pytest.raises(ValueError):
        store.presigned_get(k, expires_in=0)


def test_wrong_credentials_are_refused(store: S3ObjectStore, s3_peer: SeaweedS3) -> None:
    k = key("front.jpg")
    store.put(k, b"photo", JPEG)
    for access, secret in ((s3_peer.access_key, "wrong-secret"), ("nobody", s3_peer.secret_key)):
        intruder = S3ObjectStore(endpoint_url=s3_peer.endpoint_url, bucket=store.bucket,
                                 access_key=access, secret_key=secret)
        with pytest.raises(StorageError) as info:
            intruder.get(k)
        assert not isinstance(info.value, StorageUnavailable | ObjectNotFound)
        with pytest.raises(StorageError):
            intruder.put(key("x.jpg"), b"x", JPEG)


def test_delete_removes_every_version(store: S3ObjectStore, admin: Any) -> None:
    k = key("face.jpg", "selfie")
    for i in range(3):
        store.put(k, f"v{i}".encode(), JPEG)
    assert len(all_versions(admin, store.bucket, k)) == 3
    assert store.delete(k) == 3
    assert all_versions(admin, store.bucket, k) == []  # no old version, no delete marker
    with pytest.raises(ObjectNotFound):
        store.get(k)
    with pytest.raises(ObjectNotFound):
        store.head(k)
    assert store.delete(k) == 0  # idempotent, adds no delete marker
    assert all_versions(admin, store.bucket, k) == []


def test_delete_only_touches_its_key(store: S3ObjectStore) -> None:
    k = key("face.jpg", "selfie")
    store.put(k, b"a", JPEG)
    store.put(k + ".bak", b"b", JPEG)
    store.delete(k)
    assert store.get(k + ".bak") == b"b"


def test_delete_prefix_and_list_keys(store: S3ObjectStore, admin: Any) -> None:
    app = f"app-{uuid.uuid4().hex[:8]}"
    doomed = [object_key(3, app, "selfie", f"frame-{i}.jpg") for i in range(5)]
    kept = object_key(3, app + "x", "selfie", "frame-0.jpg")  # a sibling sharing the string prefix
    for k in doomed:
        store.put(k, b"face", JPEG)
        store.put(k, b"face again", JPEG)
    store.put(kept, b"keep", JPEG)
    prefix = f"tenants/3/applications/{app}/"
    assert store.list_keys(prefix) == sorted(doomed)
    assert store.delete_prefix(prefix) == 5
    assert store.list_keys(prefix) == []
    assert all_versions(admin, store.bucket, prefix) == []
    assert store.get(kept) == b"keep"
    assert store.delete_prefix(prefix) == 0


def test_list_objects_pages_in_key_order_with_their_age(store: S3ObjectStore) -> None:
    """One bounded page at a time (what the orphan sweep reads), from after a key, with each object's
    last-modified time from the server."""
    from datetime import UTC
    from datetime import datetime
    from datetime import timedelta

    app = f"app-{uuid.uuid4().hex[:8]}"
    keys = sorted(object_key(4, app, "selfie", f"{i}.jpg") for i in range(5))
    for k in keys:
        store.put(k, b"face", JPEG)
    prefix = f"tenants/4/applications/{app}/"
    first = store.list_objects(prefix, limit=2)
    assert [o.key for o in first] == keys[:2] and all(o.size == 4 for o in first)
    now = datetime.now(UTC)
    assert all(now - timedelta(minutes=5) < o.last_modified < now + timedelta(minutes=5) for o in first)
    rest = store.list_objects(prefix, start_after=first[-1].key, limit=10)
    assert [o.key for o in rest] == keys[2:]
    assert store.list_objects(prefix, start_after=keys[-1]) == []
    with pytest.raises(ValueError):
        store.list_objects(prefix, limit=0)
    store.delete_prefix(prefix)


def test_a_bucket_not_made_yet_lists_no_objects(s3_peer: SeaweedS3) -> None:
    """The BFF makes its bucket on the first upload; the orphan sweep may run before that, and finds nothing
    to sweep (it used to log a NoSuchBucket traceback every ten minutes)."""
    missing = make_store(s3_peer, f"leaseline-none-{uuid.uuid4().hex[:8]}")
    assert missing.list_objects("tenants/") == []


def test_corrupted_object_is_detected(store: S3ObjectStore, admin: Any) -> None:
    k = key("front.jpg")
    admin.put_object(Bucket=store.bucket, Key=k, Body=b"swapped", Metadata={"sha256": "0" * 64})
    with pytest.raises(StorageError, match="corrupted"):
        store.get(k)


@pytest.mark.parametrize("bad", ["/tenants/1/x", "tenants/../x", "tenants//x", "tenants/a b", "", "x/"])
def test_unsafe_keys_are_refused(store: S3ObjectStore, bad: str) -> None:
    with pytest.raises(ValueError):
        store.put(bad, b"x", JPEG)


def test_object_key_validation() -> None:
    assert object_key(1, "A-1", "id_card", "front.jpg") == "tenants/1/applications/A-1/id_card/front.jpg"
    for args in ((1, "..", "id_card", "x"), (1, "a/b", "id_card", "x"), (1, "a", "id card", "x"),
                 ("", "a", "k", "x"), (1, "a", "k", ".hidden"), (1, "a", "k", "x..y"), (1, "a", "k", "名.jpg")):
        with pytest.raises(ValueError):
            object_key(*args)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_storage_down_is_unavailable_quickly() -> None:
    down = S3ObjectStore(endpoint_url=f"http://127.0.0.1:{_closed_port()}", bucket="leaseline-x",
                         access_key="a", secret_key="b", connect_timeout=0.5, read_timeout=1, max_attempts=2)
    began = time.monotonic()
    with pytest.raises(StorageUnavailable):
        down.get("tenants/1/x")
    with pytest.raises(StorageUnavailable):
        down.put("tenants/1/x", b"x", JPEG)
    with pytest.raises(StorageUnavailable):
        down.ensure_bucket()
    assert time.monotonic() - began < 10


def test_storage_that_never_answers_times_out() -> None:
    with socket.socket() as silent:  # accepts connections (kernel backlog) but never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        stuck = S3ObjectStore(endpoint_url=f"http://127.0.0.1:{port}", bucket="leaseline-x",
                              access_key="a", secret_key="b", connect_timeout=0.5, read_timeout=0.5, max_attempts=1)
        began = time.monotonic()
        with pytest.raises(StorageUnavailable):
            stuck.head("tenants/1/x")
        assert time.monotonic() - began < 3
