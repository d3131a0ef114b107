"""Object storage: the ``ObjectStore`` port and ``S3ObjectStore``, its adapter for any S3-compatible server.

Documents and biometric images (ID-card photos, selfies, signed PDFs) live in one private bucket under
``tenants/{tenant}/applications/{application_id}/{kind}/{name}`` (:func:`object_key`). Every object is
written with server-side encryption (SSE-S3, ``AES256``) and carries the SHA-256 of its bytes in its user
metadata, checked again on every read. Nothing is ever made public: browsers get short-lived presigned URLs.

The embedded default is SeaweedFS on localhost (``infra.peers.SeaweedS3``, RECIPES.md); production points
the same adapter at AWS S3, Alibaba OSS, Tencent COS or MinIO. Every failure surfaces as
:class:`StorageError`; an unreachable or failing server as :class:`StorageUnavailable`, so a journey step
can be saved and resumed instead of lost.

S3 API reference: https://docs.aws.amazon.com/AmazonS3/latest/API/API_Operations_Amazon_Simple_Storage_Service.html
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import logging
import re
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from typing import Any
from typing import Protocol
from typing import TypeVar
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError
from botocore.exceptions import ClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import HTTPClientError
from botocore.exceptions import ParamValidationError

from infra.forksafe import PerProcess

log = logging.getLogger(__name__)

T = TypeVar("T")

SSE_ALGORITHM = "AES256"
SHA256_METADATA = "sha256"  # sent as the header x-amz-meta-sha256
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4 limit

_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_KEY = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*/?")
_UNAVAILABLE_STATUS = {500, 502, 503, 504}
_NOT_FOUND_CODES = {"NoSuchKey", "NotFound", "404", "NoSuchVersion", ""}  # HEAD errors have no body
_PUBLIC_GRANTEES = ("http://acs.amazonaws.com/groups/global/AllUsers",
                    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers")


class StorageError(Exception):
    """Object storage failed: bad request, denied, missing object, corrupted object."""


class StorageUnavailable(StorageError):
    """The storage server cannot be reached, timed out or failed on its side (5xx after retries)."""


class ObjectNotFound(StorageError):
    """No object (current version) under this key."""


@dataclass(frozen=True)
class StoredObject:
    """What :meth:`ObjectStore.put` wrote."""

    key: str
    version_id: str | None  # None when the bucket is not versioned
    etag: str
    size: int
    sha256: str  # hex


@dataclass(frozen=True)
class ObjectInfo:
    """An object's headers, as :meth:`ObjectStore.head` returns them."""

    key: str
    size: int
    etag: str
    content_type: str
    version_id: str | None
    sha256: str | None
    server_side_encryption: str | None  # "AES256" when the server encrypted it at rest
    last_modified: datetime | None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ListedObject:
    """One entry of :meth:`ObjectStore.list_objects`: a key with a current version, its size and age."""

    key: str
    size: int
    last_modified: datetime  # the server's clock, timezone-aware (UTC)


@dataclass(frozen=True)
class BucketReport:
    """What :meth:`S3ObjectStore.ensure_bucket` found and did; each setting is "enabled", "already" or why not."""

    bucket: str
    created: bool
    versioning: str
    default_encryption: str
    public_access_block: str
    acl: str


class ObjectStore(Protocol):
    """The port: private, encrypted, versioned object storage addressed by validated keys."""

    def put(self, key: str, data: bytes, content_type: str,
            metadata: dict[str, str] | None = None) -> StoredObject:
        """Store ``data`` under ``key`` (a new version if it exists), encrypted at rest, with its SHA-256."""
        ...

    def get(self, key: str) -> bytes:
        """The current bytes under ``key``; :class:`ObjectNotFound` if none, :class:`StorageError` if corrupted."""
        ...

    def head(self, key: str) -> ObjectInfo:
        """The current object's headers without its bytes; :class:`ObjectNotFound` if none."""
        ...

    def delete(self, key: str) -> int:
        """Remove ``key`` for good: every version and delete marker. Returns how many were removed (0 if none)."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under ``prefix`` (all versions). Returns how many distinct keys were removed."""
        ...

    def list_keys(self, prefix: str) -> list[str]:
        """The keys with a current version under ``prefix``, sorted."""
        ...

    def list_objects(self, prefix: str, *, start_after: str = "", limit: int = 1000) -> list[ListedObject]:
        """At most ``limit`` (1–1000) objects under ``prefix`` with keys after ``start_after``, in key order: one
        bounded page, for work that walks a large bucket a little at a time."""
        ...

    def presigned_get(self, key: str, expires_in: int = 300) -> str:
        """A URL that lets its holder GET ``key`` without credentials for ``expires_in`` seconds."""
        ...


def object_key(tenant: str | int, application_id: str, kind: str, name: str) -> str:
    """``tenants/{tenant}/applications/{application_id}/{kind}/{name}``, each part checked.

    A part is 1–128 characters of ``A–Z a–z 0–9 . _ -``, starts with a letter or digit and contains no
    ``..``: no slashes, no traversal, nothing a URL or a shell would reinterpret.
    """
    parts = {"tenant": str(tenant), "application_id": application_id, "kind": kind, "name": name}
    for label, value in parts.items():
        if not isinstance(value, str) or not _SEGMENT.fullmatch(value) or ".." in value:
            raise ValueError(f"object key: {label} must be 1-128 characters of A-Z a-z 0-9 . _ - "
                             f"starting with a letter or digit, without '..'; got {value!r}")
    return f"tenants/{parts['tenant']}/applications/{application_id}/{kind}/{name}"


def check_key(key: str, *, prefix: bool = False) -> str:
    """``key`` if it is a safe object key (or, with ``prefix``, a non-empty key prefix); else ValueError."""
    if (not isinstance(key, str) or not key or len(key) > 1024 or not _KEY.fullmatch(key) or ".." in key
            or (key.endswith("/") and not prefix)):
        what = "prefix" if prefix else "key"
        raise ValueError(f"object {what} must be '/'-separated parts of A-Z a-z 0-9 . _ -, "
                         f"no leading slash, no empty part, no '..'; got {key!r}")
    return key


def _is_local(endpoint_url: str | None) -> bool:
    host = urlsplit(endpoint_url).hostname if endpoint_url else None
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


#: what a bucket setting the server does not implement means for the data (SeaweedFS has no public access block)
_MEANING = {
    "public access block": "the bucket is kept private by its ACL instead (reset to private and checked for public "
                           "grants at every start)",
    "private ACL": "ACLs are disabled on the bucket (object ownership enforced), so no ACL can make it public",
    "versioning": "an overwritten or deleted object cannot be restored from an earlier version",
    "default encryption": "every upload still asks for server-side encryption and is refused when not encrypted",
}
_SAID: set[tuple[str | None, str, str]] = set()  # (endpoint, bucket, setting) already said in this process


class S3ObjectStore:
    """:class:`ObjectStore` over the S3 API with boto3 (thread-safe: one client shared by all threads)."""

    def __init__(self, *, endpoint_url: str | None, bucket: str, access_key: str, secret_key: str,
                 region: str = "us-east-1", connect_timeout: float = 2, read_timeout: float = 10,
                 max_attempts: int = 3, addressing_style: str | None = None) -> None:
        """``addressing_style``: "path" or "virtual"; by default path-style for localhost and IP endpoints
        (no DNS for ``bucket.127.0.0.1``), boto3's choice otherwise."""
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.region = region
        style = addressing_style or ("path" if _is_local(endpoint_url) else "auto")
        config = Config(
            region_name=region,
            signature_version="s3v4",
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            # https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html
            retries={"max_attempts": max_attempts, "mode": "standard"},
            s3={"addressing_style": style},
            # boto3 >= 1.36 adds CRC32 checksums to every upload by default, which several S3-compatible
            # servers (older MinIO, OSS, COS) reject; we send Content-MD5 ourselves and keep SHA-256 in metadata.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        # a private session (the default one is not thread-safe), and a client per process (infra/forksafe.py)
        self._clients: PerProcess[Any] = PerProcess(lambda: boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, aws_access_key_id=access_key, aws_secret_access_key=secret_key,
            config=config))

    @property
    def _s3(self) -> Any:
        return self._clients.get()

    # -- set-up -------------------------------------------------------------------------------------------

    def ensure_bucket(self, object_lock: bool = False) -> BucketReport:
        """Create the bucket if missing (idempotent), private, versioned, encrypted by default; with
        ``object_lock`` it is created with S3 Object Lock enabled (only possible at creation), so that
        :meth:`put` can lock versions in compliance mode.

        Public access block and bucket ACLs are not implemented by every server (SeaweedFS answers 501 to the
        first; AWS refuses ACLs when object ownership is "bucket owner enforced"): such settings are reported,
        not failed. The bucket ACL is reset to ``private`` so that no grant can make objects public where
        the public access block is missing.
        """
        created = self._call(lambda: self._create_bucket(object_lock))
        versioning = self._setting("versioning", lambda: self._s3.put_bucket_versioning(
            Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"}))
        encryption = self._setting("default encryption", lambda: self._s3.put_bucket_encryption(
            Bucket=self.bucket, ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": SSE_ALGORITHM}}]}))
        block = self._setting("public access block", lambda: self._s3.put_public_access_block(
            Bucket=self.bucket, PublicAccessBlockConfiguration={
                "BlockPublicAcls": True, "IgnorePublicAcls": True,
                "BlockPublicPolicy": True, "RestrictPublicBuckets": True}))
        acl = self._setting("private ACL", lambda: self._s3.put_bucket_acl(Bucket=self.bucket, ACL="private"))
        if acl == "enabled":
            grants = self._call(lambda: self._s3.get_bucket_acl(Bucket=self.bucket)).get("Grants", [])
            public = [g for g in grants if g.get("Grantee", {}).get("URI") in _PUBLIC_GRANTEES]
            if public:
                raise StorageError(f"bucket {self.bucket} still grants public access: {public}")
            acl = "private"
        report = BucketReport(self.bucket, created, versioning, encryption, block, acl)
        log.info("object storage bucket ready: %s", report)
        return report

    def _create_bucket(self, object_lock: bool = False) -> bool:
        try:
            self._s3.head_bucket(Bucket=self.bucket)
            return False
        except ClientError as exc:
            if _status(exc) != 404:
                raise
        try:
            # Outside us-east-1, AWS wants the region restated: https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateBucket.html
            where = {} if self.region == "us-east-1" else {
                "CreateBucketConfiguration": {"LocationConstraint": self.region}}
            lock = {"ObjectLockEnabledForBucket": True} if object_lock else {}
            self._s3.create_bucket(Bucket=self.bucket, ACL="private", **where, **lock)
        except ClientError as exc:
            if _code(exc) in ("BucketAlreadyOwnedByYou",):  # created meanwhile by another process
                return False
            raise
        return True

    def _setting(self, what: str, apply: Callable[[], object]) -> str:
        try:
            self._call(apply)
        except StorageUnavailable:
            raise
        except StorageError as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and (
                    _status(cause) == 501 or _code(cause) in ("NotImplemented", "AccessControlListNotSupported")):
                said = (self.endpoint_url, self.bucket, what)
                if said not in _SAID:  # once per process and bucket: information about the server, not a fault
                    _SAID.add(said)
                    log.info("object storage: the server does not implement the %s (%s) on bucket %s: %s", what,
                             _code(cause), self.bucket, _MEANING.get(what, "the bucket is used without it"))
                return f"not supported ({_code(cause)})"
            raise
        return "enabled"

    # -- the port -----------------------------------------------------------------------------------------

    def put(self, key: str, data: bytes, content_type: str,
            metadata: dict[str, str] | None = None, retain_until: datetime | None = None) -> StoredObject:
        """``retain_until``: lock this version in COMPLIANCE mode until then (Object Lock): nobody, not even
        the account's root, can delete or overwrite it before (the bucket needs ``ensure_bucket(True)``)."""
        check_key(key)
        lock = {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": retain_until} if retain_until else {}
        digest = hashlib.sha256(data).hexdigest()
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode("ascii")
        meta = {**(metadata or {}), SHA256_METADATA: digest}
        response = self._call(lambda: self._s3.put_object(
            Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, ContentMD5=md5, Metadata=meta,
            ServerSideEncryption=SSE_ALGORITHM, **lock))
        if response.get("ServerSideEncryption") not in (SSE_ALGORITHM, "aws:kms", "aws:kms:dsse"):
            # We asked for encryption; a server that silently ignores it must not hold our documents.
            version = {"VersionId": response["VersionId"]} if response.get("VersionId") else {}
            self._call(lambda: self._s3.delete_object(Bucket=self.bucket, Key=key, **version))
            raise StorageError(f"server did not encrypt {key!r} at rest "
                               f"(ServerSideEncryption={response.get('ServerSideEncryption')!r})")
        return StoredObject(key=key, version_id=response.get("VersionId"), etag=response.get("ETag", "").strip('"'),
                            size=len(data), sha256=digest)

    def get(self, key: str) -> bytes:
        check_key(key)

        def read() -> tuple[bytes, dict[str, str]]:
            response = self._s3.get_object(Bucket=self.bucket, Key=key)
            body = response["Body"]
            try:
                return body.read(), response.get("Metadata", {})
            finally:
                body.close()

        data, meta = self._call(read, key)
        expected = meta.get(SHA256_METADATA)
        if expected and hashlib.sha256(data).hexdigest() != expected:
            raise StorageError(f"object {key!r} is corrupted: SHA-256 does not match its metadata")
        return data

    def head(self, key: str) -> ObjectInfo:
        check_key(key)
        r = self._call(lambda: self._s3.head_object(Bucket=self.bucket, Key=key), key)
        meta = dict(r.get("Metadata", {}))
        return ObjectInfo(key=key, size=int(r.get("ContentLength", 0)), etag=r.get("ETag", "").strip('"'),
                          content_type=r.get("ContentType", ""), version_id=r.get("VersionId"),
                          sha256=meta.get(SHA256_METADATA), server_side_encryption=r.get("ServerSideEncryption"),
                          last_modified=r.get("LastModified"), metadata=meta)

    def delete(self, key: str) -> int:
        check_key(key)
        return self._call(lambda: self._delete_versions(key, exact=True))

    def delete_prefix(self, prefix: str) -> int:
        check_key(prefix, prefix=True)
        keys: set[str] = set()

        def run() -> int:
            return self._delete_versions(prefix, exact=False, seen=keys)

        self._call(run)
        return len(keys)

    def list_keys(self, prefix: str) -> list[str]:
        check_key(prefix, prefix=True)

        def run() -> list[str]:
            pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

        return self._call(run)

    def list_objects(self, prefix: str, *, start_after: str = "", limit: int = 1000) -> list[ListedObject]:
        check_key(prefix, prefix=True)
        if not 1 <= limit <= 1000:  # ListObjectsV2 returns at most 1000 keys per request
            raise ValueError("limit must be between 1 and 1000")
        # https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html: keys in UTF-8 binary order,
        # StartAfter "can be any key in the bucket"
        after = {"StartAfter": start_after} if start_after else {}

        def page() -> Any:
            try:
                return self._s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=limit, **after)
            except ClientError as exc:  # the bucket is made on first upload: none yet holds nothing to list
                if _code(exc) == "NoSuchBucket":
                    return {}
                raise

        found = self._call(page)
        return [ListedObject(obj["Key"], int(obj.get("Size", 0)), obj["LastModified"])
                for obj in found.get("Contents", [])]

    def retention(self, key: str, version_id: str) -> tuple[str, datetime] | None:
        """The Object Lock (mode, retain-until) of one version, or None when it is not locked."""
        check_key(key)
        try:
            found = self._call(lambda: self._s3.get_object_retention(Bucket=self.bucket, Key=key,
                                                                       VersionId=version_id), key)
        except StorageError as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and _code(cause) in ("NoSuchObjectLockConfiguration",
                                                                    "ObjectLockConfigurationNotFoundError"):
                return None
            raise
        retention = found.get("Retention") or {}
        if not retention.get("Mode"):
            return None
        return str(retention["Mode"]), retention["RetainUntilDate"]

    def extend_retention(self, key: str, version_id: str, until: datetime) -> datetime:
        """Lock one version in COMPLIANCE mode until ``until`` when that is later than its lock now; never earlier
        (S3 refuses to shorten a compliance lock anyway). Returns the retain-until date the version has after.

        For a record whose retention period is counted from a date that moved (a lease's end, once the car was
        handed over). PutObjectRetention:
        https://docs.aws.amazon.com/AmazonS3/latest/API/API_PutObjectRetention.html
        """
        check_key(key)
        current = self.retention(key, version_id)
        if current is not None and current[1] >= until:
            return current[1]
        self._call(lambda: self._s3.put_object_retention(
            Bucket=self.bucket, Key=key, VersionId=version_id,
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until}), key)
        return until

    def get_version(self, key: str, version_id: str) -> bytes:
        """The bytes of one version of ``key`` (a signed contract is read by the version it was stored as)."""
        check_key(key)

        def read() -> bytes:
            body = self._s3.get_object(Bucket=self.bucket, Key=key, VersionId=version_id)["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()

        return self._call(read, key)

    def presigned_get(self, key: str, expires_in: int = 300) -> str:
        check_key(key)
        if not 1 <= expires_in <= MAX_PRESIGN_SECONDS:
            raise ValueError(f"expires_in must be between 1 and {MAX_PRESIGN_SECONDS} seconds")
        # Signed locally, no request: https://docs.aws.amazon.com/AmazonS3/latest/userguide/ShareObjectPreSignedURL.html
        return str(self._call(lambda: self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in)))

    # -- helpers ------------------------------------------------------------------------------------------

    def _versions(self, prefix: str) -> Iterator[dict[str, str]]:
        """Every version and delete marker under ``prefix`` ({"Key", "VersionId"}, as DeleteObjects takes them)."""
        pages = self._s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
                # "null" is a real id (an object from before versioning) and is passed back as such.
                yield {"Key": item["Key"], **({"VersionId": item["VersionId"]} if item.get("VersionId") else {})}

    def _delete_versions(self, prefix: str, *, exact: bool, seen: set[str] | None = None) -> int:
        # Listed first, then deleted by version id: a plain DeleteObject on a versioned bucket would only add
        # a delete marker and keep the bytes (and on a missing key, still add a marker).
        doomed = [v for v in self._versions(prefix) if not exact or v["Key"] == prefix]
        for start in range(0, len(doomed), 1000):  # DeleteObjects takes at most 1000 keys
            batch = doomed[start:start + 1000]
            # DeleteObjects requires a body checksum; botocore adds it ("when_required").
            response = self._s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            if response.get("Errors"):
                raise StorageError(f"could not delete {len(response['Errors'])} object versions: "
                                   f"{response['Errors'][:3]}")
        if seen is not None:
            seen.update(v["Key"] for v in doomed)
        return len(doomed)

    def _call(self, fn: Callable[[], T], key: str | None = None) -> T:
        """Run one boto3 call, turning botocore's exceptions into ours."""
        try:
            return fn()
        except ClientError as exc:
            status, code = _status(exc), _code(exc)
            if key is not None and status == 404 and code in _NOT_FOUND_CODES:
                raise ObjectNotFound(f"no object {key!r} in bucket {self.bucket}") from exc
            if status in _UNAVAILABLE_STATUS or code in ("SlowDown", "ServiceUnavailable", "RequestTimeout"):
                raise StorageUnavailable(f"object storage failed: {status} {code}") from exc
            raise StorageError(f"object storage refused the request: {status} {code}") from exc
        except (BotoConnectionError, HTTPClientError) as exc:
            raise StorageUnavailable(f"object storage unreachable at {self.endpoint_url or 'AWS'}: {exc}") from exc
        except ParamValidationError as exc:
            raise StorageError(f"invalid object storage request: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"object storage error: {exc}") from exc


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
