"""One DATA payload as it arrives (RFC 5321 §4.1.1.4, §4.5.2), and the bare-LF normalisation applied after it.

The listener feeds `DataReader` the fragments it reads up to each LF; the reader recognises the end of the
data only as CRLF "." CRLF (or "." CRLF right after the 354), so a bare LF or a lone CR next to a dot never ends
a message early: that is how one DATA would smuggle a second transaction (CVE-2023-51766, CVE-2024-27305).
Lines may be of any length. Only once the end is found does `normalise` turn bare LF line endings into CRLF, as
Postfix 3.9 does with `smtpd_forbid_bare_newline = normalize`.
"""

from __future__ import annotations

import re

END_OF_DATA = b".\r\n"  # the whole last line; the CRLF before it ended the line above
CR = 0x0D
DOT = b"."

_BARE_LF = re.compile(rb"(?<!\r)\n\.?")


class DataReader:
    """Collects one message from the fragments read after the 354, in memory bounded by the size limit.

    Each fragment holds at most one LF, as its last byte: a whole line, or a piece of a longer one. Up to
    `limit` octets (stuffing dots counted, the end-of-data line not) are kept, with the leading dot of each
    line that follows CRLF removed (RFC 5321 §4.5.2). Past the limit nothing more is kept, the data so far is
    dropped, and the reader only watches for the end, holding at most the first two octets of a line: the
    listener answers 552 once the client has finished sending, as RFC 5321 §4.2.5 implies.
    """

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.received = 0
        self.ended = False
        self._data = bytearray()
        self._head = b""  # the current line's first octets, held while they could still be "." CRLF
        self._in_line = False  # part of the current line has been taken already
        self._after_crlf = True  # the current line follows CRLF, or the 354
        self._last_cr = False  # the last octet received was CR (a CRLF may be split across two fragments)

    @property
    def too_large(self) -> bool:
        return self.limit is not None and self.received > self.limit

    def feed(self, fragment: bytes) -> bool:
        """Take the next fragment; True when it completed the end-of-data line (the data is then whole)."""
        if self.ended:
            raise ValueError("the data has ended; the next bytes are commands")
        if b"\n" in fragment[:-1]:
            raise ValueError("a fragment ends at its first LF")
        stuffed = False
        if not self._in_line:
            fragment = self._head + fragment
            if len(fragment) < len(END_OF_DATA) and not fragment.endswith(b"\n"):
                self._head = fragment
                return False
            self._head = b""
            self._in_line = True
            if self._after_crlf and fragment == END_OF_DATA:
                self.ended = True
                return True
            stuffed = self._after_crlf and fragment.startswith(DOT)
        if fragment.endswith(b"\n"):
            self._after_crlf = fragment.endswith(b"\r\n") or (len(fragment) == 1 and self._last_cr)
            self._in_line = False
        if fragment:
            self._last_cr = fragment[-1] == CR
        self._keep(fragment, skip=1 if stuffed else 0)
        return False

    def _keep(self, fragment: bytes, *, skip: int) -> None:
        self.received += len(fragment)
        if self.too_large:
            if self._data:
                self._data = bytearray()  # let the memory go now, not at the end of the transfer
            return
        self._data += memoryview(fragment)[skip:]

    def take(self) -> bytearray:
        """The data received (never over the limit), handed over: the reader keeps no reference to it."""
        if not self.ended or self.too_large:
            raise ValueError("no whole message within the limit")
        data, self._data = self._data, bytearray()
        return data


def normalise(data: bytes | bytearray) -> tuple[bytes, bool]:
    """Every bare LF becomes CRLF, and a line that began after a bare LF loses one leading dot: the client
    stuffed it as RFC 5321 §4.5.2 asks, but `DataReader` removes stuffing only after CRLF. True when
    anything changed. Costs one copy of the data, at most twice its size (a message of bare LFs only).
    """
    if data.count(b"\n") == data.count(b"\r\n"):  # no bare LF (most mail): a copy is faster than the search
        return bytes(data), False
    normalised, changes = _BARE_LF.subn(b"\r\n", data)
    return normalised, changes > 0
