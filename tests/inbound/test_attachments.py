"""Attachment file names safe to show and save, and types sniffed from the bytes."""

from __future__ import annotations

import pytest

from helpgate.inbound.attachments import MAX_FILENAME_BYTES, location_name, safe_filename, sniff


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\report.pdf", "report.pdf"),
        ("a\x00b\x1f.txt", "ab.txt"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),  # a right-to-left override would show it as "exe.pdf"
        ("a<b>:c?.txt", "a_b__c_.txt"),
        (" .hidden. ", "hidden"),
        ("Prüfbericht \u2013 Gerät.pdf", "Prüfbericht \u2013 Gerät.pdf"),
    ],
)
def test_file_names_lose_paths_and_control_characters(name: str, safe: str) -> None:
    assert safe_filename(name, index=3, content_type="application/pdf") == safe


@pytest.mark.parametrize("name", [None, "", "..", "/", "\x00"])
def test_unusable_names_fall_back_to_the_part_index(name: str | None) -> None:
    assert safe_filename(name, index=3, content_type="application/pdf") == "part-3.pdf"


@pytest.mark.parametrize(
    ("location", "name"),
    [
        ("http://example.org/img/logo%20big.png?v=2#top", "logo big.png"),
        ("file:///C:/Users/x/Pictures/image001.jpg", "image001.jpg"),
        ("image002.gif", "image002.gif"),
        ("<http://example.org/a/\r\n  b.png>", "b.png"),  # folded: RFC 2557 drops the whitespace
        ("http://example.org/", None),
        ("http://[broken/x.png", "x.png"),
    ],
)
def test_content_location_gives_its_last_path_segment(location: str, name: str | None) -> None:
    assert location_name(location) == name


def test_content_location_name_is_sanitised_like_any_other() -> None:
    name = location_name("http://example.org/%2E%2E%2Fsecret%00.txt")
    assert safe_filename(name, index=2, content_type="text/plain") == "secret.txt"


def test_long_names_are_capped_with_their_extension_kept() -> None:
    capped = safe_filename("日本語" * 100 + ".xlsx", index=1, content_type="application/octet-stream")
    assert capped.endswith(".xlsx") and len(capped.encode()) <= MAX_FILENAME_BYTES


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"\x78\x9f\x3e\x22\x01\x00", "application/vnd.ms-tnef"),
        (b"PK\x03\x04" + b"\x00" * 40, "application/zip"),
        (b"%PDF-1.7\n", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "image/png"),
        (b"BEGIN:VCALENDAR\r\n", "text/calendar"),
        (b"just text", None),
    ],
)
def test_types_are_sniffed_from_the_leading_bytes(data: bytes, kind: str | None) -> None:
    assert sniff(data) == kind
