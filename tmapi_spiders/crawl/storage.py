"""Feeds in object storage (s3://, gs://): checked before the first paid call (the library installed;
for s3:// the bucket takes a probe object, through Scrapy's own S3FeedStorage client), and a failed
upload at close is a failed write (`WriteGuard`, exit 7)."""

from __future__ import annotations

import importlib
import uuid
from typing import IO, Any, Self
from urllib.parse import urlsplit

from scrapy.crawler import Crawler
from scrapy.extensions.feedexport import GCSFeedStorage, S3FeedStorage
from scrapy.settings import BaseSettings
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from tmapi_spiders.crawl.writes import WriteFailed, WriteGuard

# scheme -> (the module its storage needs, the extra of ours that brings it)
LIBRARIES = {"s3": ("botocore", "s3"), "gs": ("google.cloud.storage", "gcs")}
PROBE_SUFFIX = ".tmapi-probe"


class StorageError(Exception):
    """A remote output cannot be written: the one line to show."""


def scheme_of(uri: str) -> str:
    return urlsplit(uri).scheme.lower()


def is_remote(uri: str) -> bool:
    return scheme_of(uri) in LIBRARIES


def check(uri: str, what: str, settings: BaseSettings) -> None:
    """StorageError when `what` (the products feed, ...) cannot be written to `uri`."""
    scheme = scheme_of(uri)
    module, extra = LIBRARIES[scheme]
    try:
        importlib.import_module(module)  # installed but broken counts as missing: the upload would fail
    except ImportError:
        raise StorageError(
            f"{what} {uri} needs the {module} library, which is not installed: pip install 'tmapi-spiders[{extra}]'"
        ) from None
    if scheme == "s3":
        _check_s3(uri, what, settings)


def _check_s3(uri: str, what: str, settings: BaseSettings) -> None:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError  # optional: the s3 extra

    storage = _s3_storage(uri, settings)
    client, bucket = storage.s3_client, storage.bucketname
    probe_key = f"{storage.keyname or 'feed'}{PROBE_SUFFIX}-{uuid.uuid4().hex[:12]}"
    try:
        client.head_bucket(Bucket=bucket)
        client.put_object(Bucket=bucket, Key=probe_key, Body=b"")
        client.delete_object(Bucket=bucket, Key=probe_key)
    except NoCredentialsError:
        raise StorageError(
            f"{what} {uri}: no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            " (environment or -s), or give boto3 a profile"
        ) from None
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("404", "NoSuchBucket") or status == 404:
            reason = f"bucket {bucket} does not exist"
        elif code in ("403", "AccessDenied") or status == 403:
            reason = f"access to bucket {bucket} is denied"
        else:
            reason = f"{code or status}: {exc.response.get('Error', {}).get('Message', '')}".rstrip(": ")
        raise StorageError(f"{what} {uri} cannot be written ({reason})") from None
    except BotoCoreError as exc:  # an endpoint that does not answer, a bad region
        raise StorageError(f"{what} {uri} cannot be written ({exc})") from None


def _s3_storage(uri: str, settings: BaseSettings) -> S3FeedStorage:
    """Scrapy's storage for `uri` as FeedExporter will build it (the same client settings)."""
    return S3FeedStorage(
        uri,
        access_key=settings.get("AWS_ACCESS_KEY_ID"),
        secret_key=settings.get("AWS_SECRET_ACCESS_KEY"),
        session_token=settings.get("AWS_SESSION_TOKEN"),
        endpoint_url=settings.get("AWS_ENDPOINT_URL") or None,
        region_name=settings.get("AWS_REGION_NAME") or None,
    )


class _Guarded:
    """Mixed in before Scrapy's storage class: a failed upload goes to the WriteGuard."""

    uri: str
    guard: WriteGuard | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler, uri: str, *, feed_options: dict[str, Any] | None = None) -> Self:
        storage = super().from_crawler(crawler, uri, feed_options=feed_options)  # type: ignore[misc]
        storage.uri = uri
        storage.guard = WriteGuard.of(crawler)
        return storage  # type: ignore[no-any-return]

    def store(self, file: IO[bytes]) -> Deferred[None]:
        stored: Deferred[None] = super().store(file)  # type: ignore[misc]

        def failed(failure: Failure) -> Failure:
            exc = failure.value
            if self.guard is not None:
                self.guard.fail(_display(self.uri), OSError(f"upload failed: {_cause(exc)}"))
            return Failure(WriteFailed(f"not stored: {_display(self.uri)}: {_cause(exc)}"))

        return stored.addErrback(failed)


def _cause(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        code, message = error.get("Code"), error.get("Message")
        if code or message:
            return f"{code}: {message}" if code and message else str(code or message)
    return str(exc) or type(exc).__name__


def _display(uri: str) -> str:
    """The URI without credentials written into it (s3://KEY:SECRET@bucket/...)."""
    parts = urlsplit(uri)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{parts.path}"


class GuardedS3FeedStorage(_Guarded, S3FeedStorage):
    """Scrapy's S3 storage, its failed upload a failed write (exit 7)."""


class GuardedGCSFeedStorage(_Guarded, GCSFeedStorage):
    """Scrapy's GCS storage, its failed upload a failed write (exit 7)."""
