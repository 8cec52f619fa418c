"""Bytes of a text part or a header block to str, by the charset cascade of docs/architecture.md.

The declared charset is tried through its superset (iso-8859-1 → cp1252, shift_jis → cp932, gb2312 → gb18030:
mail clients label text by the narrow name and write the wide one), then UTF-8, then a detector
(charset-normalizer) when there are enough 8-bit bytes for one (SHORT_SAMPLE), and last the declared charset with
replacement characters, or cp1252 for text that is unlabelled or claims UTF-8. Decoding never raises.
"""

from __future__ import annotations

import codecs
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import charset_normalizer

log = logging.getLogger(__name__)

#: Labels seen in real mail that Python's codec registry does not know.
ALIASES = {
    "iso-8859-8-i": "iso8859-8",
    "iso-8859-6-i": "iso8859-6",
    "windows-874": "cp874",
    "x-sjis": "cp932",
    "x-mac-roman": "mac-roman",
    "x-euc-jp": "euc_jp",
    "x-gbk": "gbk",
    "x-cp1252": "cp1252",
}
#: Charsets that carry no information: decide from the bytes.
MEANINGLESS = frozenset({"x-unknown", "unknown", "unknown-8bit", "x-user-defined", "default", "charset", "8bit"})
#: Narrow charset → the wider one its writers really use (WHATWG encoding standard, Microsoft code pages).
SUPERSETS = {
    "ascii": "cp1252",
    "iso8859-1": "cp1252",
    "iso8859-9": "cp1254",
    "iso8859-11": "cp874",
    "tis-620": "cp874",
    "shift_jis": "cp932",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "euc_kr": "cp949",
    "big5": "big5hkscs",
}
#: Single-byte Western labels that 8-bit UTF-8 text is most often mislabeled with (or sent without a label).
WESTERN = frozenset({"ascii", "iso8859-1", "iso8859-15", "cp1252"})
DETECT_BYTES = 64 * 1024
#: Fewer 8-bit bytes than this are too few for the detector (it reads "Café" as Urdu, cp1006, and "Réunion à" as
#: cp1250, "ŕ"): text that is not UTF-8 is then read as cp1252, the most common writer of short unlabelled 8-bit text.
SHORT_SAMPLE = 16
_CODEPAGE = re.compile(r"^(?:cp|windows|win)[-_ ]?(\d{3,4})$")
_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]{1,40})""", re.IGNORECASE)
_WORD_CHARSET = re.compile(rb"=\?([A-Za-z0-9._:-]{1,40})(?:\*[A-Za-z0-9-]*)?\?[bBqQ]\?")
_ASCII = bytes(range(128))
_CHARSET_PARAM = re.compile(rb"""charset\s*=\s*["']?([A-Za-z0-9._:-]{1,40})""", re.IGNORECASE)


@dataclass(frozen=True)
class Decoded:
    text: str
    charset: str  # the codec that produced the text
    clean: bool  # the declared charset (or its superset) decoded the bytes


def codec(label: str | None) -> str | None:
    """Python's codec name for a MIME charset label, or None when the label is missing, meaningless or unknown."""
    if not label:
        return None
    name = label.strip().strip("\"'").strip().lower()
    if not name or name in MEANINGLESS:
        return None
    name = ALIASES.get(name, name)
    match = _CODEPAGE.match(name)
    if match:
        name = f"cp{match.group(1)}"
    try:
        return codecs.lookup(name).name
    except (LookupError, ValueError):  # unknown, or not even a name (a NUL byte in it)
        return None


def decode(data: bytes, declared: str | None, *, hint: str | None = None) -> Decoded:
    """Decode by the cascade; ``hint`` is a second label to try (the message's charset for 8-bit headers)."""
    wanted = codec(declared)
    if data.isascii() and not _seven_bit(wanted):
        if b"\x1b$" in data:  # ISO-2022-JP escapes in text that does not say so
            text = _strict(data, "iso2022_jp")
            if text is not None:
                return Decoded(text, "iso2022_jp", False)
        return Decoded(data.decode("ascii"), "ascii", True)
    candidates: list[str] = []
    if wanted is None or wanted in WESTERN:
        # Valid multi-byte UTF-8 almost never happens by chance in Western 8-bit text, so it is the better bet.
        candidates.append("utf-8")
    if wanted is not None:
        candidates += [SUPERSETS.get(wanted, wanted), wanted]
    hinted = codec(hint)
    if hinted is not None:
        candidates.append(SUPERSETS.get(hinted, hinted))
    candidates.append("utf-8")
    for name in dict.fromkeys(candidates):
        text = _strict(data, name)
        if text is not None:
            return Decoded(text, name, wanted is not None and name in (wanted, SUPERSETS.get(wanted)))
    detected = _detect(data) if _eight_bit_count(data) >= SHORT_SAMPLE else None
    if detected is not None:
        log.info("mime.charset_detected declared=%s detected=%s", declared, detected)
        return Decoded(data.decode(detected, errors="replace"), detected, False)
    fallback = SUPERSETS.get(wanted, wanted) if wanted not in (None, "utf-8") else "cp1252"
    log.info("mime.charset_replaced declared=%s used=%s", declared, fallback)
    return Decoded(data.decode(fallback, errors="replace"), fallback, False)


def decode_headers(block: bytes, *, hints: Sequence[str] = ()) -> Decoded:
    """A raw header block with 8-bit bytes: UTF-8 (RFC 6532); else a charset the block names elsewhere (``hints``:
    see ``named_in_headers``), through its superset; else, for a sample of at least SHORT_SAMPLE 8-bit bytes, a
    detector run on the 8-bit lines alone (the ASCII around them would drown the signal); else cp1252."""
    names = ["utf-8"]
    for hint in hints:
        name = codec(hint)
        if name is not None and name != "ascii":  # an ASCII label says nothing about 8-bit bytes
            names += [SUPERSETS.get(name, name), name]
    for name in dict.fromkeys(names):
        text = _strict(block, name)
        if text is not None:
            return Decoded(text, name, name == "utf-8")
    detected = None
    if _eight_bit_count(block) >= SHORT_SAMPLE:
        detected = _detect(b"\n".join(line for line in block.split(b"\n") if not line.isascii()))
    name = detected or "cp1252"
    return Decoded(block.decode(name, errors="replace"), name, False)


def named_in_headers(header_block: bytes) -> list[str]:
    """The charsets a raw header block names: those of its RFC 2047 encoded words, in order, then the first
    ``charset=`` parameter (its Content-Type's). The writer of the block most likely used one of them for the
    8-bit bytes it left unlabelled, which beats a detector's guess on a few bytes."""
    names = [match.decode("ascii") for match in _WORD_CHARSET.findall(header_block)]
    declared = declared_in_headers(header_block)
    return list(dict.fromkeys([*names, *([declared] if declared else [])]))


def declared_in_html(data: bytes) -> str | None:
    """The charset an HTML document names in its own <meta> (used when the MIME header names none)."""
    match = _META_CHARSET.search(data[:4096])
    return match.group(1).decode("ascii") if match else None


def declared_in_headers(header_block: bytes) -> str | None:
    """The first ``charset=`` parameter of a raw header block, as a hint for its own 8-bit headers."""
    match = _CHARSET_PARAM.search(header_block)
    return match.group(1).decode("ascii") if match else None


def _eight_bit_count(data: bytes) -> int:
    return len(data.translate(None, _ASCII))


def _seven_bit(name: str | None) -> bool:
    """Charsets whose bytes are all ASCII but do not mean ASCII."""
    return name is not None and name.startswith(("iso2022", "utf-7", "hz"))


def _strict(data: bytes, name: str) -> str | None:
    try:
        return data.decode(name)
    except UnicodeDecodeError:
        if name.startswith("iso2022_jp"):
            return _iso2022jp_as_cp932(data)
        return None
    except LookupError:
        return None


def _detect(data: bytes) -> str | None:
    best = charset_normalizer.from_bytes(data[:DETECT_BYTES]).best()
    if best is None:
        return None
    return codec(best.encoding)


_ESCAPES = {b"\x1b(B": "ascii", b"\x1b(J": "ascii", b"\x1b(I": "kana", b"\x1b$@": "jis", b"\x1b$B": "jis"}


def _iso2022jp_as_cp932(data: bytes) -> str | None:
    """ISO-2022-JP as Windows writes it (CP50221): JIS X 0208 plus NEC and IBM extensions and half-width kana.

    Python's iso2022_jp codecs reject the extensions (①, ㈱, ...), so transcode each JIS pair to Shift_JIS and
    decode with cp932, which has them.
    """
    out = bytearray()
    mode = "ascii"
    i = 0
    while i < len(data):
        escape = data[i : i + 3]
        if escape in _ESCAPES:
            mode = _ESCAPES[escape]
            i += 3
            continue
        byte = data[i]
        if mode == "jis" and byte > 0x20:
            if i + 1 >= len(data):
                return None
            out += _jis_to_sjis(byte, data[i + 1])
            i += 2
            continue
        out.append(byte + 0x80 if mode == "kana" and 0x21 <= byte <= 0x5F else byte)
        i += 1
    try:
        return bytes(out).decode("cp932")
    except UnicodeDecodeError:
        return None


def _jis_to_sjis(first: int, second: int) -> bytes:
    lead = (first + 1) // 2 + (0x70 if first <= 0x5E else 0xB0)
    trail = second + (0x1F if second <= 0x5F else 0x20) if first % 2 else second + 0x7E
    return bytes((lead & 0xFF, trail & 0xFF))
