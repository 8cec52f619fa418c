"""The charset cascade: declared → superset → UTF-8 → detector, never raising."""

from __future__ import annotations

import pytest

from helpgate.inbound import charsets


def test_latin1_label_on_windows_1252_bytes_decodes_through_the_superset() -> None:
    decoded = charsets.decode("\u201cpaid\u201d €49 \u2013 twice".encode("cp1252"), "iso-8859-1")
    assert decoded.text == "\u201cpaid\u201d €49 \u2013 twice" and decoded.charset == "cp1252" and decoded.clean


def test_utf8_mislabeled_as_latin1_is_read_as_utf8() -> None:
    decoded = charsets.decode("Grüße".encode(), "iso-8859-1")
    assert decoded.text == "Grüße" and not decoded.clean


def test_shift_jis_label_allows_windows_extensions() -> None:
    assert charsets.decode("①㈱".encode("cp932"), "Shift_JIS").text == "①㈱"


def test_gb2312_label_allows_gbk_characters() -> None:
    assert charsets.decode("朱镕基 喆".encode("gbk"), "gb2312").text == "朱镕基 喆"


def test_iso_2022_jp_with_nec_extensions_decodes() -> None:
    # ① is row 13 of the NEC extensions (0x2D21), which Python's iso2022_jp codecs reject.
    assert charsets.decode(b"\x1b$B\x2d\x21\x24\x22\x1b(B ok", "iso-2022-jp").text == "①あ ok"


def test_unlabelled_iso_2022_jp_is_recognised_by_its_escapes() -> None:
    assert charsets.decode("日本語".encode("iso2022_jp"), None).text == "日本語"


def test_unlabelled_legacy_text_goes_to_the_detector() -> None:
    text = "Привет, как дела? Это тест кодировки для детектора."
    assert charsets.decode(text.encode("cp1251"), None).text == text


@pytest.mark.parametrize("label", ["nonsense", "x-unknown", "unknown-8bit", "", "a\x00b", '"utf-8"'])
def test_odd_labels_never_raise(label: str) -> None:
    assert isinstance(charsets.decode(b"caf\xc3\xa9 \xff", label).text, str)


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("cp-1251", "cp1251"),
        ("windows-874", "cp874"),
        ("ks_c_5601-1987", "euc_kr"),
        ("UTF8", "utf-8"),
        ("x-sjis", "cp932"),
    ],
)
def test_real_world_labels_map_to_codecs(label: str, codec: str) -> None:
    assert charsets.codec(label) == codec


def test_8bit_header_block_uses_the_message_charset_then_a_detector_on_its_8bit_lines() -> None:
    block = b"Subject: " + "ツール".encode("cp932") + b"\r\nFrom: a@example.jp"
    assert "ツール" in charsets.decode_headers(block, hint=None).text
    assert "Grüße" in charsets.decode_headers("Subject: Grüße".encode("cp1252"), hint="windows-1252").text
