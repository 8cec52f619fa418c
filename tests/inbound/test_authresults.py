"""Reading SPF, DKIM and DMARC verdicts from Authentication-Results."""

from __future__ import annotations

from helpgate.inbound import authresults

GMAIL = (
    "mx.google.com; dkim=pass header.i=@example.org header.s=s1 header.b=abc; "
    "spf=pass (google.com: domain of jane@example.org designates 1.2.3.4 as permitted sender) "
    "smtp.mailfrom=jane@example.org; dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=example.org"
)
SPOOFED = (
    "mx.example.net; spf=fail smtp.mailfrom=bank.example; dkim=none; dmarc=fail (p=QUARANTINE) header.from=bank.example"
)


def test_all_pass() -> None:
    result = authresults.parse(GMAIL)
    assert result.as_dict() == {"spf": "pass", "dkim": "pass", "dmarc": "pass"} and not result.dmarc_failed


def test_dmarc_failure_is_flagged() -> None:
    result = authresults.parse(SPOOFED)
    assert result.dmarc_failed and result.spf == "fail" and result.dkim == "none"


def test_comments_do_not_fake_verdicts() -> None:
    result = authresults.parse("mx.example.net; spf=pass (dmarc=fail in a comment) smtp.mailfrom=a@b")
    assert result.dmarc is None and result.spf == "pass"


def test_untrusted_authserv_id_is_ignored() -> None:
    forged = "attacker.example; dmarc=pass header.from=bank.example"
    value = f"{forged}\n{SPOOFED}"
    assert authresults.parse(value, trusted_ids=frozenset({"mx.example.net"})).dmarc == "fail"
    assert authresults.parse(forged, trusted_ids=frozenset({"mx.example.net"})).as_dict() == {}


def test_best_dkim_signature_counts() -> None:
    value = "mx.example.net; dkim=fail header.d=list.example; dkim=pass header.d=example.org; dmarc=pass"
    assert authresults.parse(value).dkim == "pass"


def test_empty_and_garbage() -> None:
    assert authresults.parse("").as_dict() == {}
    assert authresults.parse(";;; = =").as_dict() == {}
