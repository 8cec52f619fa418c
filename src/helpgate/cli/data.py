"""`helpgate export | import | purge | recount`: move a whole store to another one, drop old mail bytes by
retention, repair the queue's ticket counts."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from helpgate import __version__
from helpgate.core.settings import Settings
from helpgate.installation import Installation
from helpgate.maintenance import archive, retention
from helpgate.maintenance.archive_format import ArchiveError, Manifest
from helpgate.tickets import counters, tickets

COMMANDS = ("export", "import", "purge", "recount")

#: Exit codes besides 0 (done), 1 (any other error) and 2 (bad usage or settings).
BAD_ARCHIVE = 3
TARGET_NOT_EMPTY = 4


def add_commands(commands: Any) -> None:
    export = commands.add_parser(
        "export",
        help="write the whole store to one archive",
        description="Write every ticket, message, raw mail, attachment, user, mailbox, skill, counter, event, "
        "workflow run, outbound mail and audit entry to ARCHIVE (a tar; gzip-compressed when the name ends in "
        ".gz or .tgz). Sessions, reset codes, rate limits and leases are left out. Stop helpgate serve first "
        "for a consistent archive.",
    )
    export.add_argument("archive", type=Path)
    export.add_argument(
        "--with-password-hashes",
        action="store_true",
        help="keep users' password hashes (else they set a new password through password reset after import)",
    )
    imports = commands.add_parser(
        "import",
        help="load an archive into an empty store",
        description="Check ARCHIVE completely, then load it into the store the settings name (MONGODB_URI and "
        "HELPGATE_MONGODB_DATABASE, or the embedded store), which must be empty. Nothing is written when the "
        "archive is damaged.",
    )
    imports.add_argument("archive", type=Path)
    purge = commands.add_parser(
        "purge",
        help="remove old raw mail and attachment bytes, and old workflow history (retention)",
        description="Remove the bytes of raw mail older than HELPGATE_RAW_MAIL_RETENTION_DAYS and of attachments "
        "older than HELPGATE_ATTACHMENT_RETENTION_DAYS (0: keep forever); tickets, messages and the records "
        "stay. Mail not yet processed or quarantined is never purged. Also delete workflow runs finished and "
        "outbox events delivered more than HELPGATE_WORKFLOW_HISTORY_DAYS ago. helpgate serve does this every "
        "hour.",
    )
    purge.add_argument("--dry-run", action="store_true", help="count what would go; change nothing")
    purge.add_argument("--raw-mail-days", type=int, help="override HELPGATE_RAW_MAIL_RETENTION_DAYS")
    purge.add_argument("--attachment-days", type=int, help="override HELPGATE_ATTACHMENT_RETENTION_DAYS")
    purge.add_argument("--history-days", type=int, help="override HELPGATE_WORKFLOW_HISTORY_DAYS")
    commands.add_parser(
        "recount",
        help="count tickets per status and priority afresh (the queue's counts)",
        description="Count every ticket per status and priority and overwrite the counters that "
        "GET /api/tickets/stats and the queue's totals read, printing each count that changes. A repair: an "
        "instance killed between a ticket write and its counter update leaves a count off by one. Safe while "
        "helpgate serve runs; a ticket changed during the count may leave its count off until the next recount.",
    )


def _progress(what: str, count: int, finished: bool) -> None:
    print(f"  {what}: {count}" + ("" if finished else " …"), file=sys.stderr, flush=True)


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


async def run(args: argparse.Namespace, installation: Installation) -> int:
    try:
        if args.command == "export":
            return await _export(args, installation)
        if args.command == "import":
            return await _import(args, installation)
    except ArchiveError as error:
        print(f"helpgate: {error.detail}", file=sys.stderr)
        return BAD_ARCHIVE
    except archive.TargetNotEmpty as error:
        print(f"helpgate: {error.detail}", file=sys.stderr)
        return TARGET_NOT_EMPTY
    if args.command == "recount":
        return await _recount()
    return await _purge(args, installation.settings)


def _database(installation: Installation) -> archive.Database:
    assert installation.client is not None
    return installation.client[installation.settings.mongodb_database]


async def _export(args: argparse.Namespace, installation: Installation) -> int:
    database = _database(installation)
    if installation.store is not None and not installation.store.owned:
        print("helpgate: helpgate serve is running on this store: stop it for a consistent export", file=sys.stderr)
    print(f"exporting database {database.name!r} to {args.archive}", file=sys.stderr)
    started = time.monotonic()
    manifest = await archive.export(
        database,
        args.archive,
        secret_key=installation.load_secret_key(),
        helpgate_version=__version__,
        with_password_hashes=args.with_password_hashes,
        progress=_progress,
    )
    print(
        f"exported {_contents(manifest)} to {args.archive} ({_megabytes(args.archive.stat().st_size)}) "
        f"in {time.monotonic() - started:.1f} s"
    )
    if not manifest.password_hashes:
        print(
            "users' password hashes are left out: after import everyone sets a new password through password "
            "reset; export with --with-password-hashes to keep them (then keep the archive safe)"
        )
    print(
        "IMAP passwords stay encrypted with HELPGATE_SECRET_KEY, which also signs Message-IDs and reply "
        "addresses: give the importing installation the same key (or copy the data dir's secret_key file)"
    )
    return 0


def _contents(manifest: Manifest) -> str:
    files = sum(bucket.files for bucket in manifest.gridfs.values())
    size = sum(bucket.bytes for bucket in manifest.gridfs.values())
    return f"{manifest.documents()} documents and {files} GridFS files ({_megabytes(size)})"


async def _import(args: argparse.Namespace, installation: Installation) -> int:
    database = _database(installation)
    print(f"checking {args.archive}, then importing into database {database.name!r}", file=sys.stderr)
    started = time.monotonic()
    report = await archive.import_archive(
        database, args.archive, secret_key=installation.load_secret_key(), progress=_progress
    )
    manifest = report.manifest
    print(
        f"imported {_contents(manifest)} from {args.archive} (exported by helpgate {manifest.helpgate_version} "
        f"on {manifest.created_at:%Y-%m-%d %H:%M} UTC from database {manifest.database!r}) "
        f"in {time.monotonic() - started:.1f} s"
    )
    if not manifest.password_hashes:
        print(
            "the archive holds no password hashes: users set a new password through password reset "
            "(POST /api/auth/password-reset)"
        )
    if not report.secret_key_matches:
        print(
            "helpgate: warning: the archive was exported with another HELPGATE_SECRET_KEY. Set the same key here "
            "(or copy the old data dir's secret_key file) before helpgate serve: with another key, IMAP "
            "passwords cannot be decrypted and replies to mail signed with the old key are not recognised by "
            "its signature",
            file=sys.stderr,
        )
    return 0


async def _purge(args: argparse.Namespace, settings: Settings) -> int:
    days = retention.Retention(
        raw_mail_days=settings.raw_mail_retention_days if args.raw_mail_days is None else args.raw_mail_days,
        attachment_days=settings.attachment_retention_days if args.attachment_days is None else args.attachment_days,
        history_days=settings.workflow_history_days if args.history_days is None else args.history_days,
    )
    if min(days.raw_mail_days, days.attachment_days, days.history_days) < 0:
        print("helpgate: retention days cannot be negative", file=sys.stderr)
        return 2
    if not days.enabled:
        print(
            "nothing to purge: HELPGATE_RAW_MAIL_RETENTION_DAYS, HELPGATE_ATTACHMENT_RETENTION_DAYS and "
            "HELPGATE_WORKFLOW_HISTORY_DAYS are 0 (keep forever)"
        )
        return 0
    print(
        f"{'dry run: ' if args.dry_run else ''}purging raw mail older than {days.raw_mail_days or '∞'} days, "
        f"attachments older than {days.attachment_days or '∞'} days, "
        f"workflow history older than {days.history_days or '∞'} days",
        file=sys.stderr,
    )
    report = await retention.purge(days, dry_run=args.dry_run, progress=lambda what, n: _progress(what, n, False))
    print(report.summary())
    return 0


async def _recount() -> int:
    print("counting tickets per status and priority …", file=sys.stderr, flush=True)
    before = await counters.values([counters.TICKETS_TOTAL, *tickets.bucket_names()])
    after = await tickets.recount()
    changed = [name for name in sorted(after) if before.get(name, 0) != after[name]]
    for name in changed:
        print(f"  {name}: {before.get(name, 0)} -> {after[name]}")
    print(f"{after[counters.TICKETS_TOTAL]} ticket(s) counted; {len(changed)} count(s) corrected")
    return 0
