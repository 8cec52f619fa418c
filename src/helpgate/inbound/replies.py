"""SMTP replies helpgate gives, by name (RFC 5321 codes with RFC 3463 enhanced status)."""

OK = "250 2.0.0 OK: message stored"
RCPT_OK = "250 2.1.5 OK"
UNKNOWN_RECIPIENT = "550 5.1.1 No such mailbox here"
STORE_FAILED = "451 4.3.0 Message not stored, try again later"
NO_RECIPIENTS = "554 5.5.1 No valid recipients"
