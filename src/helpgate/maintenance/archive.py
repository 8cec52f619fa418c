"""Export a whole store to one portable archive; import such an archive into an empty store.

The archive's layout and its check live in `archive_format`. Both directions stream: export spools each
collection to a temporary file beside the archive (so the manifest, which needs the counts, can go first)
and passes each GridFS file through a spooled buffer; import reads the archive twice, once to check every
count and checksum (nothing is written when it fails), then to write. Documents go in through pymongo
collections, not Beanie models, so every `_id` and field arrives exactly as exported; the target's indexes
come from Beanie's initialisation, before the import.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from bson import ObjectId
from gridfs import AsyncGridFSBucket
from gridfs.errors import GridFSError
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from helpgate.core.clock import utcnow
from helpgate.core.errors import Conflict, StorageUnavailable
from helpgate.maintenance.archive_format import (
    MANIFEST,
    SHA256_HEADER,
    ArchiveError,
    BucketSummary,
    EntrySummary,
    Manifest,
    Progress,
    blob_entry,
    check,
    classify,
    collection_entry,
    decode,
    encode,
    files_entry,
    key_fingerprint,
    members,
    quiet,
    reading,
)

log = logging.getLogger(__name__)

Database = AsyncDatabase[dict[str, Any]]

#: Collections an archive leaves out: state that belongs to one running installation, not to its data.
LEFT_OUT = {
    "refresh_tokens": "sessions: everyone signs in again",
    "password_reset_tokens": "pending password resets: ask for a new one",
    "rate_windows": "rate-limit windows: they start afresh",
    "leases": "which instance polls which mailbox: taken again at start",
    "oauth_consents": "mailbox consents under way: start the consent again",
    "triage_models": "the learned triage: trained again from the reviewed tickets when the gateway starts",
}
PROGRESS_EVERY = 1000
INSERT_BATCH_DOCUMENTS = 500
INSERT_BATCH_BYTES = 8 * 1024 * 1024
BLOB_MEMORY_BYTES = 16 * 1024 * 1024  # a GridFS file larger than this passes through a temporary file
STREAMED_BLOB_BYTES = 4 * 1024 * 1024  # larger GridFS files are read on their own, not in the chunk pass


class TargetNotEmpty(Conflict):
    """Import writes only into an empty database."""


@dataclass(frozen=True)
class ImportReport:
    manifest: Manifest
    secret_key_matches: bool  # False: stored IMAP passwords and signed Message-IDs need the exporter's key


def _layout(names: list[str]) -> tuple[list[str], list[str]]:
    """The plain collections to export, and the GridFS buckets (a `.files` and `.chunks` pair each)."""
    buckets = sorted(n.removesuffix(".files") for n in names if n.endswith(".files") and f"{n[:-6]}.chunks" in names)
    in_buckets = {f"{bucket}.{part}" for bucket in buckets for part in ("files", "chunks")}
    plain = sorted(n for n in names if n not in in_buckets and n not in LEFT_OUT and not n.startswith("system."))
    return plain, buckets


async def export(
    database: Database,
    path: Path,
    *,
    secret_key: str,
    helpgate_version: str,
    with_password_hashes: bool = False,
    progress: Progress = quiet,
) -> Manifest:
    """Write every collection and GridFS file of `database` to a new archive at `path` (gzip for .gz/.tgz)."""
    _check_target(path)
    plain, buckets = _layout(await database.list_collection_names())
    partial = path.with_name(f".{path.name}.partial")
    with tempfile.TemporaryDirectory(prefix=".helpgate-export-", dir=path.parent) as spool_dir:
        spool = Path(spool_dir)
        collections: dict[str, EntrySummary] = {}
        for name in plain:
            strip = ("password_hash",) if name == "users" and not with_password_hashes else ()
            collections[name] = await _spool(database[name], spool / name, name, strip, progress)
        gridfs = {b: await _spool_files(database[f"{b}.files"], spool / f"{b}.files", b, progress) for b in buckets}
        manifest = Manifest(
            helpgate_version=helpgate_version,
            created_at=utcnow(),
            database=database.name,
            password_hashes=with_password_hashes,
            secret_key_fingerprint=key_fingerprint(secret_key),
            collections=collections,
            gridfs=gridfs,
            left_out={name: why for name, why in LEFT_OUT.items()},
        )
        try:
            with _open_for_writing(partial, gzip=path.name.endswith((".gz", ".tgz"))) as tar:
                _add(tar, MANIFEST, manifest.model_dump_json(indent=2).encode(), manifest.created_at)
                for name in plain:
                    _add_file(tar, collection_entry(name), spool / name, manifest.created_at)
                for bucket in buckets:
                    _add_file(tar, files_entry(bucket), spool / f"{bucket}.files", manifest.created_at)
                    await _add_blobs(tar, database, bucket, spool / f"{bucket}.files", progress)
            partial.rename(path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    log.info("archive.exported path=%s documents=%d", path, manifest.documents())
    return manifest


def _check_target(path: Path) -> None:
    if path.exists():
        raise ArchiveError(f"{path} exists: choose another name or remove it first")
    if not path.parent.is_dir():
        raise ArchiveError(f"{path.parent} is not a directory")


def _open_for_writing(path: Path, *, gzip: bool) -> tarfile.TarFile:
    if gzip:
        return tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT)
    return tarfile.open(path, "w", format=tarfile.PAX_FORMAT)


async def _spool(
    collection: AsyncCollection[dict[str, Any]], target: Path, what: str, strip: tuple[str, ...], progress: Progress
) -> EntrySummary:
    digest = hashlib.sha256()
    count = 0
    with target.open("wb") as out:
        async for document in collection.find({}, batch_size=200):
            for name in strip:
                document.pop(name, None)
            line = encode(document)
            out.write(line)
            digest.update(line)
            count += 1
            if count % PROGRESS_EVERY == 0:
                progress(what, count, False)
    progress(what, count, True)
    return EntrySummary(count=count, sha256=digest.hexdigest())


async def _spool_files(
    files: AsyncCollection[dict[str, Any]], target: Path, bucket: str, progress: Progress
) -> BucketSummary:
    summary = await _spool(files, target, f"{bucket} (GridFS files)", (), progress)
    total = 0
    async for document in files.find({}, {"length": 1}):
        total += int(document.get("length", 0))
    return BucketSummary(files=summary.count, bytes=total, sha256=summary.sha256)


def _add(tar: tarfile.TarFile, name: str, data: bytes, when: datetime) -> None:
    tar.addfile(_info(name, len(data), when), io.BytesIO(data))


def _add_file(tar: tarfile.TarFile, name: str, source: Path, when: datetime) -> None:
    with source.open("rb") as reader:
        tar.addfile(_info(name, source.stat().st_size, when), reader)


def _info(name: str, size: int, when: datetime, sha256: str | None = None) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600  # the archive holds customers' mail
    info.mtime = int(when.timestamp())
    if sha256 is not None:
        info.pax_headers = {SHA256_HEADER: sha256}
    return info


async def _add_blobs(tar: tarfile.TarFile, database: Database, bucket: str, listing: Path, progress: Progress) -> None:
    """Every listed file's bytes. Most are read in one pass over the bucket's chunks, in stored order: a file's
    chunks are stored one after another as it is written, so each file completes within a few chunks and is
    added then. That is one cursor where reading each file on its own takes two queries (~5 ms a file on the
    embedded store). A large file, one whose chunks the pass did not complete (it changed meanwhile, or
    interleaved with too many others to hold), and an empty one are then read on their own."""
    wanted: dict[ObjectId, dict[str, Any]] = {}
    with listing.open("rb") as lines:
        for line in lines:
            document = decode(line)
            file_id = document["_id"]
            if not isinstance(file_id, ObjectId):
                raise ArchiveError(f"GridFS file {file_id!r} in bucket {bucket} has no ObjectId: cannot export it")
            wanted[file_id] = {key: document.get(key) for key in ("_id", "length", "chunkSize", "uploadDate")}
    added = await _add_streamed_blobs(tar, database, bucket, wanted, progress)
    store = AsyncGridFSBucket(database, bucket_name=bucket)
    for file_id, document in wanted.items():
        if file_id not in added:
            await _add_blob(tar, store, bucket, document)
            added.add(file_id)
            if len(added) % 100 == 0:
                progress(f"{bucket} (GridFS bytes)", len(added), False)
    progress(f"{bucket} (GridFS bytes)", len(added), True)


def _chunk_count(document: dict[str, Any]) -> int | None:
    """How many chunks a file of this document has; None when it is not one for the pass (see _add_blobs)."""
    length, chunk_size = document.get("length"), document.get("chunkSize")
    if not isinstance(length, int) or not isinstance(chunk_size, int) or chunk_size <= 0:
        return None
    if length == 0 or length > STREAMED_BLOB_BYTES:
        return None
    return -(-length // chunk_size)


async def _add_streamed_blobs(
    tar: tarfile.TarFile, database: Database, bucket: str, wanted: dict[ObjectId, dict[str, Any]], progress: Progress
) -> set[ObjectId]:
    """The pass of `_add_blobs`; returns the ids of the files it added."""
    added: set[ObjectId] = set()
    skipped: set[ObjectId] = set()  # given up: held too long, or not one for the pass
    partial: dict[ObjectId, dict[int, bytes]] = {}
    held = 0
    async for chunk in database[f"{bucket}.chunks"].find({}, {"files_id": 1, "n": 1, "data": 1}):
        file_id, n = chunk.get("files_id"), chunk.get("n")
        if not isinstance(file_id, ObjectId) or not isinstance(n, int):
            continue  # not a chunk GridFS wrote: no listed file has it
        document = wanted.get(file_id)
        if document is None or file_id in added or file_id in skipped:
            continue  # a chunk of a file not listed (written after the listing), or of one done otherwise
        count = _chunk_count(document)
        if count is None:
            skipped.add(file_id)
            continue
        parts = partial.setdefault(file_id, {})
        data = bytes(chunk.get("data", b""))
        held += len(data) - len(parts.get(n, b""))
        parts[n] = data
        if len(parts) == count and all(index in parts for index in range(count)):
            held -= sum(map(len, parts.values()))
            content = b"".join(parts[index] for index in range(count))
            del partial[file_id]
            if len(content) != document["length"]:
                skipped.add(file_id)  # read on its own, which says what is wrong
                continue
            info = _info(blob_entry(bucket, file_id), len(content), document["uploadDate"])
            info.pax_headers = {SHA256_HEADER: hashlib.sha256(content).hexdigest()}
            tar.addfile(info, io.BytesIO(content))
            added.add(file_id)
            if len(added) % 100 == 0:
                progress(f"{bucket} (GridFS bytes)", len(added), False)
        while held > BLOB_MEMORY_BYTES:  # too many files half read at once: the largest is read on its own
            largest = max(partial, key=lambda key: sum(map(len, partial[key].values())))
            held -= sum(map(len, partial.pop(largest).values()))
            skipped.add(largest)
    return added


async def _add_blob(tar: tarfile.TarFile, store: AsyncGridFSBucket, bucket: str, document: dict[str, Any]) -> None:
    file_id: ObjectId = document["_id"]
    digest = hashlib.sha256()
    with tempfile.SpooledTemporaryFile(max_size=BLOB_MEMORY_BYTES) as buffer:
        try:
            stream = await store.open_download_stream(file_id)
            while chunk := await stream.readchunk():
                buffer.write(chunk)
                digest.update(chunk)
        except GridFSError as error:
            raise ArchiveError(
                f"GridFS file {file_id} of bucket {bucket} cannot be read ({type(error).__name__}: {error}); "
                "was it changed during the export? Stop helpgate serve and export again"
            ) from None
        size = buffer.tell()
        if size != document.get("length"):
            raise ArchiveError(f"GridFS file {file_id} of bucket {bucket} changed during the export: export again")
        buffer.seek(0)
        tar.addfile(_info(blob_entry(bucket, file_id), size, document["uploadDate"], digest.hexdigest()), buffer)


# --- import ---------------------------------------------------------------------------------------------


async def import_archive(
    database: Database, path: Path, *, secret_key: str, progress: Progress = quiet
) -> ImportReport:
    """Check the whole archive, make sure `database` is empty, then write everything into it.

    Should writing fail half-way (the store went away), what was written is deleted again, so the
    target is left as empty as it was found."""
    await require_empty(database)
    manifest = await asyncio.to_thread(check, path, progress)
    touched: list[str] = []
    try:
        await _write(database, path, touched, progress)
    except (PyMongoError, OSError, ArchiveError) as error:
        cleaned = await _empty_again(database, touched)
        state = "what it had written was deleted again" if cleaned else "the target database holds a partial import"
        detail = error.detail if isinstance(error, ArchiveError) else f"{type(error).__name__}: {error}"
        failure = ArchiveError if isinstance(error, ArchiveError) else StorageUnavailable
        raise failure(f"the import stopped ({detail}); {state}: fix the cause and import again") from error
    log.info("archive.imported path=%s documents=%d database=%s", path, manifest.documents(), database.name)
    return ImportReport(
        manifest=manifest, secret_key_matches=manifest.secret_key_fingerprint == key_fingerprint(secret_key)
    )


async def require_empty(database: Database) -> None:
    holding = [
        name
        for name in sorted(await database.list_collection_names())
        if not name.startswith("system.") and await database[name].find_one({}, {"_id": 1}) is not None
    ]
    if holding:
        raise TargetNotEmpty(
            f"the database {database.name!r} is not empty ({', '.join(holding)} hold documents): import only "
            "into an empty database. Set HELPGATE_MONGODB_DATABASE to a new name, or drop this database "
            f"(mongosh: use {database.name}; db.dropDatabase()) and import again"
        )


async def _write(database: Database, path: Path, touched: list[str], progress: Progress) -> None:
    chunk_sizes: dict[tuple[str, ObjectId], int] = {}
    with reading(path) as tar:
        for member, reader in members(tar):
            if member.name == MANIFEST:
                continue
            entry = classify(member.name)
            if entry.kind == "blob":
                assert entry.file_id is not None
                chunks = f"{entry.name}.chunks"
                touched.append(chunks)
                await _insert_chunks(database[chunks], entry.file_id, chunk_sizes[entry.name, entry.file_id], reader)
                continue
            name = entry.name if entry.kind == "collection" else f"{entry.name}.files"
            touched.append(name)
            listing = await _insert_lines(database[name], reader, name, progress, listing=entry.kind == "files")
            chunk_sizes.update({(entry.name, file_id): size for file_id, size in listing})


async def _insert_lines(
    collection: AsyncCollection[dict[str, Any]], reader: IO[bytes], what: str, progress: Progress, *, listing: bool
) -> list[tuple[ObjectId, int]]:
    """Insert every line's document in batches; for a GridFS file listing, return each file's chunk size."""
    batch: list[dict[str, Any]] = []
    batch_bytes = count = 0
    kept: list[tuple[ObjectId, int]] = []
    for line in reader:
        document = decode(line)
        batch.append(document)
        batch_bytes += len(line)
        if listing:
            kept.append((document["_id"], int(document["chunkSize"])))
        if len(batch) >= INSERT_BATCH_DOCUMENTS or batch_bytes >= INSERT_BATCH_BYTES:
            await collection.insert_many(batch, ordered=True)
            count += len(batch)
            batch, batch_bytes = [], 0
            progress(what, count, False)
    if batch:
        await collection.insert_many(batch, ordered=True)
        count += len(batch)
    progress(what, count, True)
    return kept


async def _insert_chunks(
    chunks: AsyncCollection[dict[str, Any]], file_id: ObjectId, chunk_size: int, reader: IO[bytes]
) -> None:
    """Cut the file again into chunks of its own chunkSize, numbered as GridFS reads them."""
    batch: list[dict[str, Any]] = []
    n = 0
    while data := reader.read(chunk_size):
        batch.append({"files_id": file_id, "n": n, "data": data})
        n += 1
        if len(batch) * chunk_size >= INSERT_BATCH_BYTES:
            await chunks.insert_many(batch, ordered=True)
            batch = []
    if batch:
        await chunks.insert_many(batch, ordered=True)


async def _empty_again(database: Database, touched: list[str]) -> bool:
    try:
        for name in dict.fromkeys(touched):
            await database[name].delete_many({})
    except PyMongoError:
        log.exception("archive.cleanup_failed database=%s", database.name)
        return False
    return True
