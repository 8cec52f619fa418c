"""DataReader and normalise on their own: where DATA ends, what is kept, what the limit does."""

from __future__ import annotations

import re

import pytest

from helpgate.inbound.smtp_data import DataReader, normalise


def read(stream: bytes, *, limit: int | None = None, size: int = 1001) -> tuple[DataReader, int]:
    """Feed the stream as the listener reads it (up to each LF, longer lines in pieces of `size`) until the
    reader sees the end; the number of fragments that took."""
    reader = DataReader(limit)
    lines = re.findall(rb"[^\n]*\n|[^\n]+", stream)
    pieces = [line[start : start + size] for line in lines for start in range(0, len(line), size)]
    for count, piece in enumerate(pieces, 1):
        if reader.feed(piece):
            return reader, count
    return reader, len(pieces)


def test_crlf_dot_crlf_ends_the_data_and_nothing_after_it_is_taken() -> None:
    reader, count = read(b"Subject: x\r\n\r\nbody\r\n.\r\nMAIL FROM:<a@b>\r\n")
    assert reader.ended and count == 4
    assert bytes(reader.take()) == b"Subject: x\r\n\r\nbody\r\n"


def test_a_dot_line_right_after_the_354_is_an_empty_message() -> None:
    reader, count = read(b".\r\n")
    assert reader.ended and count == 1 and reader.take() == b""


@pytest.mark.parametrize(
    "smuggled",
    [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r"],
    ids=["lf-dot-lf", "lf-dot-crlf", "crlf-dot-lf", "cr-dot-cr"],
)
def test_only_crlf_dot_crlf_ends_the_data(smuggled: bytes) -> None:
    reader, _ = read(b"body" + smuggled + b"MAIL FROM:<evil@x>\r\n")
    assert not reader.ended


def test_crlf_split_between_two_fragments_still_precedes_the_end() -> None:
    reader = DataReader(None)
    for piece in (b"a" * 10 + b"\r", b"\n", b".\r\n"):
        ended = reader.feed(piece)
    assert ended and bytes(reader.take()) == b"a" * 10 + b"\r\n"


def test_end_of_data_line_split_into_single_octets_is_recognised() -> None:
    reader = DataReader(None)
    assert [reader.feed(piece) for piece in (b"x\r\n", b".", b"\r", b"\n")] == [False, False, False, True]
    assert bytes(reader.take()) == b"x\r\n"


def test_leading_dot_is_removed_after_crlf_but_kept_after_a_bare_lf() -> None:
    reader, _ = read(b"..a\r\n.b\n..c\r\n.\r\n")
    assert bytes(reader.take()) == b".a\r\nb\n..c\r\n"


def test_a_line_longer_than_a_read_is_kept_whole() -> None:
    line = b"y" * 5000 + b"\r\n"
    reader, count = read(line + b".\r\n", size=1001)
    assert count == 6 and bytes(reader.take()) == line


def test_over_the_limit_nothing_is_kept_and_the_end_is_still_found() -> None:
    reader = DataReader(100)
    for _ in range(50):
        reader.feed(b"z" * 10 + b"\r\n")
    assert reader.too_large and len(reader._data) == 0
    assert reader.feed(b".\r\n") and reader.received == 600
    with pytest.raises(ValueError, match="within the limit"):
        reader.take()


def test_exactly_the_limit_is_accepted() -> None:
    reader, _ = read(b"0123456789\r\n" + b".\r\n", limit=12)
    assert not reader.too_large and bytes(reader.take()) == b"0123456789\r\n"


def test_fragment_with_an_lf_inside_is_refused() -> None:
    with pytest.raises(ValueError, match="first LF"):
        DataReader(None).feed(b"a\nb")


def test_normalise_turns_bare_lf_into_crlf_and_unstuffs_after_it() -> None:
    assert normalise(b"a\nb\r\n..c\n.d\n\n") == (b"a\r\nb\r\n..c\r\nd\r\n\r\n", True)


def test_normalise_leaves_crlf_and_lone_cr_alone() -> None:
    data = b"a\r\nb\rc\r\n.\r\n"
    assert normalise(data) == (data, False)


def test_normalise_of_a_dot_line_after_a_bare_lf_gives_an_empty_line() -> None:
    assert normalise(bytearray(b"x\n.\nMAIL FROM:<e@x>\r\n")) == (b"x\r\n\r\nMAIL FROM:<e@x>\r\n", True)
