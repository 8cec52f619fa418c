"""Aware UTC timestamps for documents."""

from datetime import UTC, datetime, time, timedelta


def utcnow() -> datetime:
    return datetime.now(UTC)


def stored(moment: datetime) -> datetime:
    """`moment` as the store keeps it: to the millisecond (so a value compared or keyed before and after a write
    agrees)."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def week_of(moment: datetime) -> str:
    """The ISO week of `moment`, such as 2026-W49 (reports count per week)."""
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def weeks_back(now: datetime, weeks: int) -> datetime:
    """The start (Monday 00:00 UTC) of the ISO week `weeks - 1` weeks before the one `now` is in: a report over
    `weeks` weeks, this one included, starts there."""
    monday = now.date() - timedelta(days=now.weekday() + 7 * (weeks - 1))
    return datetime.combine(monday, time.min, tzinfo=UTC)


def aware(moment: datetime) -> datetime:
    """`moment` with UTC as its zone when the store gave it without one."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
