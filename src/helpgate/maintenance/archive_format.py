"""The archive `helpgate export` writes and `helpgate import` reads: its layout, its manifest, and its check.

A tar (gzip-compressed when its name ends in .gz or .tgz) holding, in this order:

    manifest.json                 format and helpgate versions, created_at, and for every entry below its
                                  count and sha256; the secret key's fingerprint
    collections/<name>.jsonl      every document of a collection, one per line, in canonical MongoDB Extended
                                  JSON (ObjectIds, dates, binary and 64-bit integers come back as they were)
    gridfs/<bucket>/files.jsonl   a GridFS bucket's file documents (raw_mail, attachments), the same way
    gridfs/<bucket>/<file id>     each file's bytes; its sha256 rides in the entry's PAX header

`check` reads a whole archive and proves it complete before anything is written: every count, every
checksum, every line a document, every GridFS file present with its length.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import tarfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from bson import ObjectId, json_util
from bson.json_util import CANONICAL_JSON_OPTIONS
from pydantic import BaseModel, ValidationError

from helpgate.core.errors import InvalidInput

FORMAT = "helpgate-archive"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SHA256_HEADER = "HELPGATE.sha256"
JSON_OPTIONS = CANONICAL_JSON_OPTIONS.with_options(tz_aware=True, tzinfo=UTC)
_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,119}"
_COLLECTION_ENTRY = re.compile(rf"collections/({_NAME})\.jsonl")
_FILES_ENTRY = re.compile(rf"gridfs/({_NAME})/files\.jsonl")
_BLOB_ENTRY = re.compile(rf"gridfs/({_NAME})/([0-9a-f]{{24}})")

#: Called as work goes on: (what, documents or files so far, whether that part is finished).
Progress = Callable[[str, int, bool], None]


def quiet(what: str, count: int, finished: bool) -> None:
    """A Progress that reports nothing."""


class ArchiveError(InvalidInput):
    """The archive cannot be read, is incomplete, or was changed after it was written."""


class EntrySummary(BaseModel):
    count: int
    sha256: str


class BucketSummary(BaseModel):
    files: int
    bytes: int
    sha256: str  # of its files.jsonl


class Manifest(BaseModel):
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    helpgate_version: str
    created_at: datetime
    database: str
    password_hashes: bool
    secret_key_fingerprint: str
    collections: dict[str, EntrySummary]
    gridfs: dict[str, BucketSummary]
    left_out: dict[str, str]  # collections not exported, and why

    def documents(self) -> int:
        return sum(entry.count for entry in self.collections.values())


def key_fingerprint(secret_key: str) -> str:
    """Tells whether two installations share a secret key, without saying anything about the key."""
    return hmac.new(secret_key.encode(), b"helpgate archive key check", hashlib.sha256).hexdigest()[:16]


def encode(document: dict[str, Any]) -> bytes:
    return json_util.dumps(document, json_options=JSON_OPTIONS).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    document = json_util.loads(line, json_options=JSON_OPTIONS)
    if not isinstance(document, dict) or "_id" not in document:
        raise ValueError("not a document with an _id")
    return document


def collection_entry(name: str) -> str:
    return f"collections/{name}.jsonl"


def files_entry(bucket: str) -> str:
    return f"gridfs/{bucket}/files.jsonl"


def blob_entry(bucket: str, file_id: ObjectId) -> str:
    return f"gridfs/{bucket}/{file_id}"


@dataclass(frozen=True)
class Entry:
    """What one tar member is: a collection's documents, a bucket's file documents, or one file's bytes."""

    kind: str  # "collection", "files" or "blob"
    name: str  # the collection or the bucket
    file_id: ObjectId | None = None


def classify(member_name: str) -> Entry:
    if match := _COLLECTION_ENTRY.fullmatch(member_name):
        entry = Entry("collection", match[1])
    elif match := _FILES_ENTRY.fullmatch(member_name):
        entry = Entry("files", match[1])
    elif match := _BLOB_ENTRY.fullmatch(member_name):
        entry = Entry("blob", match[1], ObjectId(match[2]))
    else:
        raise ArchiveError(f"unexpected entry {member_name!r}: not an archive written by helpgate export")
    if entry.name.startswith("system.") or ".." in entry.name:
        raise ArchiveError(f"entry {member_name!r} names a collection helpgate never writes")
    return entry


_READ_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error)


@contextmanager
def reading(path: Path) -> Iterator[tarfile.TarFile]:
    """The archive opened for reading; any read error inside the block (truncation, bad gzip data) becomes
    an ArchiveError that says so."""
    if not path.is_file():
        raise ArchiveError(f"{path}: no such file")
    try:
        tar = tarfile.open(path, "r:*")  # noqa: SIM115  (closed by the `with` below, inside the error translation)
    except _READ_ERRORS as error:
        raise ArchiveError(f"{path} is not a tar archive ({error})") from None
    try:
        with tar:
            yield tar
    except _READ_ERRORS as error:
        raise ArchiveError(f"{path} is damaged or truncated ({type(error).__name__}: {error})") from None


def members(tar: tarfile.TarFile) -> Iterator[tuple[tarfile.TarInfo, IO[bytes]]]:
    """Each member and its reader, in archive order."""
    for member in tar:
        if not member.isfile():
            raise ArchiveError(f"unexpected entry {member.name!r}: not a regular file")
        reader = tar.extractfile(member)
        assert reader is not None
        yield member, reader


def read_manifest(member: tarfile.TarInfo, reader: IO[bytes]) -> Manifest:
    if member.name != MANIFEST:
        raise ArchiveError(f"not a helpgate archive: its first entry is {member.name!r}, not {MANIFEST}")
    try:
        raw = json.loads(reader.read())
    except ValueError as error:
        raise ArchiveError(f"{MANIFEST} is not JSON: {error}") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ArchiveError(f"not a helpgate archive: {MANIFEST} does not say format {FORMAT!r}")
    version = raw.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ArchiveError(
            f"archive format version {version!r} is newer than this helpgate reads ({FORMAT_VERSION}): "
            "import it with the helpgate version that wrote it, or a newer one"
        )
    try:
        return Manifest.model_validate(raw)
    except ValidationError as error:
        raise ArchiveError(f"{MANIFEST} is incomplete: {error}") from None


@dataclass
class _Checked:
    """What the check found so far, compared with the manifest at the end."""

    collections: dict[str, EntrySummary] = field(default_factory=dict)
    buckets: dict[str, BucketSummary] = field(default_factory=dict)
    expected_blobs: dict[tuple[str, ObjectId], tuple[int, str | None]] = field(default_factory=dict)


def check(path: Path, progress: Progress = quiet) -> Manifest:
    """The archive's manifest, once every entry has been read and found to match it; else ArchiveError."""
    with reading(path) as tar:
        entries = members(tar)
        first = next(entries, None)
        if first is None:
            raise ArchiveError(f"{path} is empty")
        manifest = read_manifest(*first)
        found = _Checked()
        for member, reader in entries:
            entry = classify(member.name)
            if entry.kind == "blob":
                _check_blob(member, reader, entry, found)
                continue
            expected = manifest.collections if entry.kind == "collection" else manifest.gridfs
            if entry.name not in expected:
                raise ArchiveError(f"entry {member.name} is not in {MANIFEST}")
            summary, documents = _check_lines(member.name, reader)
            if entry.kind == "collection":
                found.collections[entry.name] = summary
            else:
                found.buckets[entry.name] = _bucket_summary(entry.name, summary, documents, found)
            progress(f"checked {member.name}", summary.count, True)
    _compare(manifest, found, path)
    return manifest


def _check_lines(name: str, reader: IO[bytes]) -> tuple[EntrySummary, list[dict[str, Any]]]:
    """Count and hash the lines; keep the documents only for files.jsonl (small: one per GridFS file)."""
    digest = hashlib.sha256()
    kept: list[dict[str, Any]] = []
    count = 0
    for count, line in enumerate(reader, start=1):
        digest.update(line)
        try:
            document = decode(line)
        except ValueError as error:
            raise ArchiveError(f"{name}, line {count}: not a document ({error})") from None
        if name.endswith("/files.jsonl"):
            kept.append(document)
    return EntrySummary(count=count, sha256=digest.hexdigest()), kept


def _bucket_summary(
    bucket: str, summary: EntrySummary, documents: list[dict[str, Any]], found: _Checked
) -> BucketSummary:
    total = 0
    for document in documents:
        file_id, length, chunk_size = document["_id"], document.get("length"), document.get("chunkSize")
        if not isinstance(file_id, ObjectId) or not isinstance(length, int) or not isinstance(chunk_size, int):
            raise ArchiveError(f"{files_entry(bucket)}: file {file_id!r} lacks an ObjectId, a length or a chunkSize")
        if chunk_size <= 0:
            raise ArchiveError(f"{files_entry(bucket)}: file {file_id} has chunkSize {chunk_size}")
        metadata = document.get("metadata")
        sha256 = metadata.get("sha256") if isinstance(metadata, dict) else None
        found.expected_blobs[(bucket, file_id)] = (length, sha256 if isinstance(sha256, str) else None)
        total += length
    return BucketSummary(files=summary.count, bytes=total, sha256=summary.sha256)


def _check_blob(member: tarfile.TarInfo, reader: IO[bytes], entry: Entry, found: _Checked) -> None:
    assert entry.file_id is not None
    expected = found.expected_blobs.pop((entry.name, entry.file_id), None)
    if expected is None:
        raise ArchiveError(f"entry {member.name} is not listed in {files_entry(entry.name)} before it")
    length, content_sha256 = expected
    digest = hashlib.sha256()
    size = 0
    while block := reader.read(1024 * 1024):
        digest.update(block)
        size += len(block)
    if size != length:
        raise ArchiveError(f"entry {member.name} holds {size} bytes, its file document says {length}")
    recorded = member.pax_headers.get(SHA256_HEADER)
    for claimed in (recorded, content_sha256):
        if claimed is not None and claimed != digest.hexdigest():
            raise ArchiveError(f"entry {member.name} does not match its sha256: changed after export")


def _compare(manifest: Manifest, found: _Checked, path: Path) -> None:
    for name, summary in manifest.collections.items():
        got = found.collections.get(name)
        if got is None:
            raise ArchiveError(f"{path} is incomplete: {collection_entry(name)} is missing (truncated?)")
        if got != summary:
            raise ArchiveError(
                f"{collection_entry(name)} holds {got.count} documents (sha256 {got.sha256[:12]}…), "
                f"{MANIFEST} says {summary.count} (sha256 {summary.sha256[:12]}…): changed or damaged after export"
            )
    for bucket, bucket_summary in manifest.gridfs.items():
        if found.buckets.get(bucket) != bucket_summary:
            raise ArchiveError(f"{path} is incomplete or damaged: {files_entry(bucket)} does not match {MANIFEST}")
    if found.expected_blobs:
        bucket, file_id = next(iter(found.expected_blobs))
        raise ArchiveError(
            f"{path} is incomplete: {len(found.expected_blobs)} GridFS file(s) missing, "
            f"e.g. {blob_entry(bucket, file_id)} (truncated?)"
        )
