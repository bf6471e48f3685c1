"""Feeds in object storage (`-O s3://bucket/products.jsonl`, `gs://...`), checked before the
first paid call and guarded at close like local files.

Scrapy writes a remote feed to a local temporary file and uploads it when the feed closes,
so without a check a missing bucket, absent credentials or a missing client library show
only after every call was paid for (a traceback at close and exit 0), or never (a scheme
whose library is missing is "disabled" and nothing is written). Here:

- `check(uri, what, settings)` runs from `scrapy crawl` before the engine starts: the
  scheme's library is installed (else one line naming the extra to install), and for s3://
  the bucket answers a HEAD and takes a tiny object that is then deleted (else one line:
  no credentials, no such bucket, access denied, endpoint unreachable). The client is
  Scrapy's own `S3FeedStorage`'s, built from the same settings (AWS_ACCESS_KEY_ID,
  AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_ENDPOINT_URL, AWS_REGION_NAME; boto3's own
  environment and files when they are unset) as the upload at close.
- `GuardedS3FeedStorage` / `GuardedGCSFeedStorage`: an upload that fails at close goes to
  the crawler's `WriteGuard` (tmapi_spiders/crawl/done.py): one line, exit code 7
  (`tmapi_write_failed`), and the summary counts no image of the run as done.

gs:// is checked for its library only (no GCS server runs in the tests).
"""

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

from tmapi_spiders.crawl.done import WriteFailed, WriteGuard

# scheme -> (the module its storage needs, the extra of ours that brings it)
LIBRARIES = {"s3": ("botocore", "s3"), "gs": ("google.cloud.storage", "gcs")}
PROBE_SUFFIX = ".tmapi-probe"


class StorageError(Exception):
    """A remote output cannot be written: the one line to show."""


def scheme_of(uri: str) -> str:
    return urlsplit(uri).scheme.lower()


def is_remote(uri: str) -> bool:
    return scheme_of(uri) in LIBRARIES


def _installed(module: str) -> bool:
    """Whether `module` imports (installed but broken counts as missing: the upload would fail)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def check(uri: str, what: str, settings: BaseSettings) -> None:
    """StorageError when `what` (the products feed, ...) cannot be written to `uri`."""
    scheme = scheme_of(uri)
    module, extra = LIBRARIES[scheme]
    if not _installed(module):
        raise StorageError(
            f"{what} {uri} needs the {module} library, which is not installed: pip install 'tmapi-spiders[{extra}]'"
        )
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
    """A blocking (upload-at-close) storage whose failed upload goes to the WriteGuard: mixed
    in before Scrapy's storage class, whose `from_crawler` and `store` it wraps."""

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
