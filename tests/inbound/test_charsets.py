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


def test_8bit_header_block_prefers_the_charset_its_content_type_names() -> None:
    block = b"Subject: " + "ツール".encode("cp932") + b"\r\nContent-Type: text/plain; charset=shift_jis"
    assert "ツール" in charsets.decode_headers(block, hints=charsets.named_in_headers(block)).text
    assert "Grüße" in charsets.decode_headers("Subject: Grüße".encode("cp1252"), hints=["windows-1252"]).text


def test_8bit_header_block_prefers_the_charset_of_its_encoded_words() -> None:
    block = b"Subject: =?koi8-r?q?=F3=DE=A3=D4?=\r\nFrom: " + "Ольга <o@example.ru>".encode("koi8-r")
    assert charsets.named_in_headers(block) == ["koi8-r"]
    assert "Ольга" in charsets.decode_headers(block, hints=charsets.named_in_headers(block)).text


def test_ascii_labels_are_no_hint_for_8bit_header_bytes() -> None:
    block = b"Subject: =?us-ascii?q?x?=\r\nFrom: " + "Ольга <o@example.ru>".encode("koi8-r")
    block += b"\r\nContent-Type: text/plain; charset=koi8-r"
    assert "Ольга" in charsets.decode_headers(block, hints=charsets.named_in_headers(block)).text


@pytest.mark.parametrize("text", ["Subject: Café crème", "From: Renée Côté <r@example.fr>", "Subject: Réunion à Paris"])
def test_short_unlabelled_8bit_header_is_cp1252_not_a_detector_guess(text: str) -> None:
    assert charsets.decode_headers(text.encode("cp1252")).text == text


def test_long_unlabelled_8bit_header_still_goes_to_the_detector() -> None:
    block = "Subject: 会議の議事録を送ります".encode("cp932") + b"\r\nFrom: a@example.jp"
    assert "会議の議事録を送ります" in charsets.decode_headers(block).text


@pytest.mark.parametrize(("data", "label"), [(b"Caf\xe9 cr\xe8me", None), (b"Caf\xe9 cr\xe8me", "utf-8")])
def test_short_text_that_is_not_utf8_is_read_as_cp1252(data: bytes, label: str | None) -> None:
    assert charsets.decode(data, label).text == "Café crème"
