"""Aware UTC timestamps for documents."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def stored(moment: datetime) -> datetime:
    """`moment` as the store keeps it: to the millisecond (so a value compared or keyed before and after a write
    agrees)."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)
