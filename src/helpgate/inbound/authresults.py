"""Authentication-Results (RFC 8601): the SPF, DKIM and DMARC verdicts the receiving server recorded.

helpgate does not verify signatures itself; it reads what the trusted receiving MTA (the mailbox provider,
or the MTA in front of the SMTP listener) wrote. Only headers from a trusted authserv-id count when such
ids are configured, since any sender can add an Authentication-Results header of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_METHOD = re.compile(r"\b(spf|dkim|dmarc)\s*=\s*([a-z]+)", re.IGNORECASE)
_COMMENT = re.compile(r"\([^()]*\)")
#: A verdict only improves in this order when several headers or signatures disagree.
_RANK = {"pass": 3, "none": 1, "neutral": 1, "softfail": 0, "temperror": 1, "permerror": 0, "fail": 0}


@dataclass(frozen=True)
class AuthResults:
    spf: str | None = None
    dkim: str | None = None
    dmarc: str | None = None

    @property
    def dmarc_failed(self) -> bool:
        return self.dmarc == "fail"

    def as_dict(self) -> dict[str, str]:
        return {name: value for name, value in (("spf", self.spf), ("dkim", self.dkim), ("dmarc", self.dmarc)) if value}


def parse(value: str, *, trusted_ids: frozenset[str] = frozenset()) -> AuthResults:
    """Verdicts from one or more Authentication-Results headers (joined by newlines).

    With `trusted_ids`, a header whose authserv-id is not among them is ignored. Several signatures
    (DKIM) or headers keep the best verdict for DKIM and the first for SPF and DMARC.
    """
    found: dict[str, str] = {}
    for header in value.splitlines():
        authserv, _, results = _COMMENT.sub(" ", header).partition(";")
        authserv_id = (authserv.split() or [""])[0].lower()
        if trusted_ids and authserv_id not in trusted_ids:
            continue
        for method, result in _METHOD.findall(results):
            method, result = method.lower(), result.lower()
            if method not in found or (method == "dkim" and _RANK.get(result, 0) > _RANK.get(found[method], 0)):
                found[method] = result
    return AuthResults(spf=found.get("spf"), dkim=found.get("dkim"), dmarc=found.get("dmarc"))
