"""Reading SPF, DKIM and DMARC verdicts from Authentication-Results, believing only trusted headers' passes."""

from __future__ import annotations

from helpgate.inbound import authresults
from helpgate.inbound.authresults import Trust

GMAIL = (
    "mx.google.com; dkim=pass header.i=@example.org header.s=s1 header.b=abc; "
    "spf=pass (google.com: domain of jane@example.org designates 1.2.3.4 as permitted sender) "
    "smtp.mailfrom=jane@example.org; dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=example.org"
)
SPOOFED = (
    "mx.example.net; spf=fail smtp.mailfrom=bank.example; dkim=none; dmarc=fail (p=QUARANTINE) header.from=bank.example"
)
#: Microsoft 365 writes no authserv-id.
MICROSOFT = (
    "spf=pass (sender IP is 192.0.2.7) smtp.mailfrom=example.org; dkim=pass (signature was verified) "
    "header.d=example.org;dmarc=pass action=none header.from=example.org;compauth=pass reason=100"
)
GOOGLE = Trust(authserv_ids=frozenset({"mx.google.com"}))
EXAMPLE_NET = Trust(authserv_ids=frozenset({"mx.example.net"}))


def test_all_pass_from_a_trusted_server() -> None:
    result = authresults.parse(GMAIL, trust=GOOGLE)
    assert result.as_dict() == {"spf": "pass", "dkim": "pass", "dmarc": "pass"}
    assert result.dmarc_passed and not result.dmarc_failed


def test_with_nothing_trusted_no_pass_counts() -> None:
    """Any sender can write `dmarc=pass` into its own mail: unset trust believes no pass."""
    result = authresults.parse(GMAIL)
    assert result.as_dict() == {} and not result.dmarc_passed


def test_a_failure_counts_from_any_header() -> None:
    result = authresults.parse(SPOOFED)
    assert result.dmarc_failed and result.spf == "fail" and result.dkim is None
    trusted = authresults.parse(SPOOFED, trust=EXAMPLE_NET)
    assert trusted.dmarc_failed and trusted.spf == "fail" and trusted.dkim == "none"


def test_comments_do_not_fake_verdicts() -> None:
    result = authresults.parse(
        "mx.example.net; spf=pass (dmarc=fail in a comment) smtp.mailfrom=a@b", trust=EXAMPLE_NET
    )
    assert result.dmarc is None and result.spf == "pass"


def test_untrusted_authserv_id_is_ignored_but_its_failures_are_not() -> None:
    forged = "attacker.example; dmarc=pass header.from=bank.example"
    assert authresults.parse(f"{forged}\n{SPOOFED}", trust=EXAMPLE_NET).dmarc == "fail"
    assert authresults.parse(forged, trust=EXAMPLE_NET).as_dict() == {}
    # A forged failure cannot override what the trusted server said.
    assert authresults.parse(f"attacker.example; dmarc=fail\n{GMAIL}", trust=GOOGLE).dmarc == "pass"


def test_the_topmost_header_of_a_provider_without_authserv_id() -> None:
    """Microsoft 365: believed only where the mailbox says so, and only the header on top (the provider's)."""
    assert authresults.parse(MICROSOFT).as_dict() == {}
    first = Trust(first_header=True)
    assert authresults.parse(MICROSOFT, trust=first).as_dict() == {"spf": "pass", "dkim": "pass", "dmarc": "pass"}
    forged_below = f"{MICROSOFT.replace('pass', 'fail')}\nattacker.example; dmarc=pass"
    assert authresults.parse(forged_below, trust=first).dmarc == "fail"


def test_best_dkim_signature_counts() -> None:
    value = "mx.example.net; dkim=fail header.d=list.example; dkim=pass header.d=example.org; dmarc=pass"
    assert authresults.parse(value, trust=EXAMPLE_NET).dkim == "pass"


def test_empty_and_garbage() -> None:
    assert authresults.parse("").as_dict() == {}
    assert authresults.parse(";;; = =", trust=Trust(first_header=True)).as_dict() == {}
