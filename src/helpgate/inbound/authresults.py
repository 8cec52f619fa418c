"""Authentication-Results (RFC 8601): the SPF, DKIM and DMARC verdicts the receiving server recorded.

helpgate does not verify signatures itself; it reads what the trusted receiving MTA (the mailbox provider, or the
MTA in front of the SMTP listener) wrote. Any sender can add an Authentication-Results header of its own, so a
verdict counts in full only from a trusted header: one whose authserv-id is trusted (HELPGATE_TRUSTED_AUTHSERV_IDS,
or the IMAP mailbox's own list), or, for a mailbox that says so, the topmost header, which its provider wrote last
(Microsoft 365 writes its header without an authserv-id). With nothing trusted, no `pass` counts.

A failing verdict counts from any header: a sender that says its own mail failed is believed, which costs an
honest sender nothing and keeps forged mail that a trusted server marked as failed from being answered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_METHOD = re.compile(r"\b(spf|dkim|dmarc)\s*=\s*([a-z]+)", re.IGNORECASE)
_COMMENT = re.compile(r"\([^()]*\)")
#: A verdict only improves in this order when several headers or signatures disagree.
_RANK = {"pass": 3, "none": 1, "neutral": 1, "softfail": 0, "temperror": 1, "permerror": 0, "fail": 0}
FAILING = frozenset({"fail"})


@dataclass(frozen=True)
class Trust:
    """Which Authentication-Results headers to believe."""

    authserv_ids: frozenset[str] = frozenset()
    first_header: bool = False  # the topmost header, whatever its authserv-id (Microsoft 365 writes none)


@dataclass(frozen=True)
class AuthResults:
    spf: str | None = None
    dkim: str | None = None
    dmarc: str | None = None

    @property
    def dmarc_failed(self) -> bool:
        return self.dmarc == "fail"

    @property
    def dmarc_passed(self) -> bool:
        """The mail is authenticated as coming from its From domain (only a trusted header says so)."""
        return self.dmarc == "pass"

    def as_dict(self) -> dict[str, str]:
        return {name: value for name, value in (("spf", self.spf), ("dkim", self.dkim), ("dmarc", self.dmarc)) if value}


def parse(value: str, *, trust: Trust | None = None) -> AuthResults:
    """Verdicts from one or more Authentication-Results headers (joined by newlines, topmost first).

    Trusted headers give every verdict: several signatures (DKIM) keep the best, SPF and DMARC the first.
    Untrusted ones only add a failing verdict where no trusted header gave one.
    """
    trust = trust or Trust()
    trusted: dict[str, str] = {}
    failing: dict[str, str] = {}
    for index, header in enumerate(value.splitlines()):
        authserv, _, results = _COMMENT.sub(" ", header).partition(";")
        first_word = (authserv.split() or [""])[0].lower()
        believed = first_word in trust.authserv_ids or (trust.first_header and index == 0)
        if trust.first_header and index == 0 and "=" in first_word:
            results = f"{authserv};{results}"  # no authserv-id: the first verdict stands where the id would
        for method, result in _METHOD.findall(results):
            method, result = method.lower(), result.lower()
            if believed:
                if method not in trusted or (method == "dkim" and _RANK.get(result, 0) > _RANK.get(trusted[method], 0)):
                    trusted[method] = result
            elif result in FAILING:
                failing.setdefault(method, result)
    found = {**failing, **trusted}
    return AuthResults(spf=found.get("spf"), dkim=found.get("dkim"), dmarc=found.get("dmarc"))
