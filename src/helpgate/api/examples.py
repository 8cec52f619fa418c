"""Example bodies the OpenAPI document shows (/docs), all from one story: Jane's printer is on fire (ticket
#42), triage sends it to Sam, an agent with the `printers` skill, and Sam replies. tests/api/test_openapi.py
checks every example against the schema it illustrates."""

from __future__ import annotations

from typing import Any

Example = dict[str, Any]

AT = "2026-11-27T09:15:00Z"
LATER = "2026-11-27T09:42:00Z"
JANE = {"email": "jane@example.org", "name": "Jane Doe"}
SAM = {"email": "sam@example.com", "name": "Sam Agent"}
JANE_ID, SAM_ID, ADMIN_ID = "6566f0a1c2b3d4e5f6a7b8c9", "6566f0a1c2b3d4e5f6a7b8ca", "6566f0a1c2b3d4e5f6a7b8cb"
MAILBOX_ID, AUDIT_ID = "6566f0a1c2b3d4e5f6a7b8cc", "6566f0a1c2b3d4e5f6a7b8cd"
MESSAGE_IDS = ("6566f0a1c2b3d4e5f6a7b8ce", "6566f0a1c2b3d4e5f6a7b8cf")

# --- accounts and sessions ------------------------------------------------------------------------------------

LOGIN: Example = {"email": "jane@example.org", "password": "correct-horse-battery-staple"}
TOKEN_FORM: Example = {
    "grant_type": "password",
    "username": "jane@example.org",
    "password": "correct-horse-battery-staple",
}
TOKENS: Example = {
    "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI2NTY2ZjBhMSJ9.c2lnbmF0dXJl",
    "refresh_token": "r1.Qm9yaW5nIGJ1dCBzYWZlOiBhIHJhbmRvbSB0b2tlbg",
    "token_type": "bearer",
}
REFRESH: Example = {"refresh_token": TOKENS["refresh_token"]}
PASSWORD_CHANGE: Example = {
    "current_password": "correct-horse-battery-staple",
    "new_password": "staple-lamp-orbit-violet",
}
PASSWORD_RESET_CONFIRM: Example = {"token": "pr1.b25lLXRpbWUgY29kZQ", "password": "staple-lamp-orbit-violet"}
ACCEPTED: Example = {"detail": "if an account exists for this address, a reset mail is on its way"}
ME: Example = {
    "id": JANE_ID,
    "email": "jane@example.org",
    "name": "Jane Doe",
    "role": "customer",
    "skills": [],
    "active": True,
}

# --- tickets ------------------------------------------------------------------------------------------------

TICKET: Example = {
    "number": 42,
    "subject": "Printer on fire",
    "status": "open",
    "priority": "high",
    "category": "hardware",
    "skills": ["printers"],
    "requester": JANE,
    "assignee": SAM,
    "message_count": 2,
    "created_at": AT,
    "updated_at": LATER,
}
# The same ticket as its customer sees it: no triage, no assignment.
TICKET_AS_CUSTOMER: Example = {**TICKET, "priority": None, "category": None, "skills": [], "assignee": None}
TICKET_PAGE: Example = {"items": [TICKET], "total": 1, "page": 1, "page_size": 25}
INBOUND_MESSAGE: Example = {
    "id": MESSAGE_IDS[0],
    "direction": "inbound",
    "kind": "email",
    "from": JANE,
    "to": ["support@example.com"],
    "cc": [],
    "subject": "Printer on fire",
    "text": "Room 4, since this morning.",
    "full_text": "Room 4, since this morning.\n\n-- \nJane Doe, Facilities\n+1 555 0100",
    "html": '<p>Room 4, since this morning.</p><img data-remote-src="https://t.example.net/p.gif" width="1">',
    "remote_images": 1,
    "message_id": "<CAF1x2y3@mail.example.org>",
    "attachments": [{"filename": "printer.jpg", "content_type": "image/jpeg", "size": 48213}],
    "delivery": None,
    "authentication": {"spf": "pass", "dkim": "pass", "dmarc": "pass"},
    "flags": [],
    "delivered_to": ["support@example.com"],
    "created_at": AT,
}
REPLY_MESSAGE: Example = {
    "id": MESSAGE_IDS[1],
    "direction": "outbound",
    "kind": "email",
    "from": SAM,
    "to": ["jane@example.org"],
    "cc": [],
    "subject": "Re: Printer on fire [#42]",
    "text": "Please unplug it; a technician is on the way.",
    "full_text": "Please unplug it; a technician is on the way.",
    "html": "<p>Please unplug it; a technician is on the way.</p>",
    "remote_images": 0,
    "message_id": "<hg.42.1a2b3c@example.com>",
    "attachments": [],
    "delivery": {
        "status": "sent",
        "attempts": 1,
        "reason": None,
        "smtp_reply": "250 2.0.0 Ok: queued as 4F3A2",
        "next_attempt_at": None,
        "sent_at": LATER,
    },
    "authentication": {},
    "flags": [],
    "delivered_to": [],
    "created_at": LATER,
}
NOTE_MESSAGE: Example = {
    **REPLY_MESSAGE,
    "direction": "internal",
    "kind": "note",
    "to": [],
    "text": "Facilities called; same printer as last month.",
    "full_text": "Facilities called; same printer as last month.",
    "html": "",
    "message_id": None,
    "delivery": None,
}
TICKET_DETAIL: Example = {
    **TICKET,
    "messages": [INBOUND_MESSAGE, REPLY_MESSAGE],
    "triage": {
        "source": "gemini",
        "model": "gemini-2.5-flash",
        "summary": "A printer in room 4 is burning.",
        "helpful_notes": "Safety first: ask the customer to unplug it.",
        "language": "en",
        "sentiment": "negative",
        "input_tokens": 412,
        "output_tokens": 96,
        "latency_ms": 830,
        "fallback_reason": None,
        "at": AT,
    },
    "response_due_at": "2026-11-27T10:15:00Z",
    "first_response_at": LATER,
    "escalated_at": None,
    "auth_failed": False,
    "flags": [],
    "linked_tickets": [],
}
TICKET_CREATE: Example = {"subject": "Printer on fire", "text": "Room 4, since this morning."}
TICKET_PATCH: Example = {"priority": "high", "assignee": "sam@example.com", "category": "hardware"}
REPLY: Example = {
    "text": "Please unplug it; a technician is on the way.",
    "cc": ["facilities@example.org"],
    "attachments": [{"filename": "steps.txt", "content_type": "text/plain", "content_base64": "VW5wbHVnIGl0Lg=="}],
    "status": "pending",
}
NOTE: Example = {"text": "Facilities called; same printer as last month."}
REQUESTER_MESSAGE: Example = {"text": "It happened again."}
STATS: Example = {
    "by_status": {"new": 3, "open": 7, "pending": 2, "solved": 15, "closed": 40},
    "open_by_priority": {"high": 2, "medium": 5, "low": 3, "none": 2},
    "open": 12,
    "mine": 4,
}

# --- admin: accounts, skills, mailboxes, audit ---------------------------------------------------------------

AGENT: Example = {
    "id": SAM_ID,
    "email": "sam@example.com",
    "name": "Sam Agent",
    "role": "agent",
    "skills": ["printers", "billing"],
    "active": True,
    "away": False,
    "created_at": AT,
}
USER_PAGE: Example = {"items": [AGENT], "total": 1, "page": 1, "page_size": 25}
USER_CREATE: Example = {"email": "sam@example.com", "name": "Sam Agent", "role": "agent", "skills": ["printers"]}
USER_PATCH: Example = {"skills": ["printers", "billing"], "away": True}
SKILL: Example = {"name": "printers", "description": "Printers, scanners and their drivers"}
MAILBOX_STATUS: Example = {
    "connected": True,
    "last_poll_at": LATER,
    "last_error": None,
    "last_error_at": None,
    "imported": 128,
    "uidvalidity": 1700000000,
    "last_uid": 4711,
    "owner": "helpgate-1",
    "lease_expires_at": "2026-11-27T09:43:00Z",
    "auth_state": None,
    "auth_error": None,
    "token_expires_at": None,
    "token_refreshed_at": None,
}
MAILBOX: Example = {
    "id": MAILBOX_ID,
    "address": "support@example.com",
    "display_name": "Support",
    "imap_host": "imap.example.com",
    "imap_port": 993,
    "imap_security": "tls",
    "imap_verify_tls": True,
    "username": "support@example.com",
    "auth": "password",
    "oauth": None,
    "smtp": {
        "host": "smtp.example.com",
        "port": 587,
        "security": "starttls",
        "verify_tls": True,
        "username": "",
        "has_password": False,
    },
    "default_sender": False,
    "folder": "INBOX",
    "after_import": "move:Imported",
    "import_history": False,
    "poll_interval_seconds": 60.0,
    "enabled": True,
    "authserv_ids": ["mx.example.com"],
    "trust_first_authentication_results": False,
    "has_password": True,
    "status": MAILBOX_STATUS,
    "created_at": AT,
    "updated_at": LATER,
}
OAUTH_START: Example = {
    "authorization_url": "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize?client_id="
    "...&response_type=code&state=...&code_challenge=...&code_challenge_method=S256",
    "redirect_uri": "https://support.example.com/api/mailboxes/oauth/callback",
    "expires_in": 900,
}
OAUTH_CONNECTED: Example = {"address": "support@example.com", "auth_state": "ok"}
MAILBOX_TEST: Example = {"ok": True, "detail": "logged in to imap.example.com:993 and opened INBOX (128 messages)"}
AUDIT_PAGE: Example = {
    "items": [
        {
            "id": AUDIT_ID,
            "at": LATER,
            "actor_id": ADMIN_ID,
            "actor_email": "admin@example.com",
            "action": "user.updated",
            "target_type": "user",
            "target_id": SAM_ID,
            "target_label": "sam@example.com",
            "changes": {"away": True},
        }
    ],
    "total": 1,
    "page": 1,
    "page_size": 25,
}

# --- errors and health ----------------------------------------------------------------------------------------

ERROR: Example = {"detail": "ticket 42 not found"}
VALIDATION_ERROR: Example = {
    "detail": [{"type": "missing", "loc": ["body", "text"], "msg": "Field required", "input": {"subject": "Printer"}}]
}
HEALTH: Example = {
    "status": "ok",
    "store": {"ok": True, "kind": "embedded"},
    "smtp": {"ok": True, "address": "0.0.0.0:2525"},
    "http": {"ok": True, "address": "0.0.0.0:8000"},
}
SUPPRESSION_PAGE: Example = {
    "items": [
        {
            "address": "old-address@example.org",
            "reason": "bounced 5.1.1 smtp; 550 5.1.1 user unknown",
            "created_at": LATER,
        }
    ],
    "total": 1,
    "page": 1,
    "page_size": 25,
}

DASHBOARD: Example = {
    "since": "2026-11-28T00:00:00Z",
    "until": "2026-12-04T16:20:00Z",
    "days": [{"day": "2026-12-04", "opened": 14, "solved": 11}],
    "backlog": {
        "new": {"high": 1, "medium": 2, "low": 0, "none": 1},
        "open": {"high": 0, "medium": 5, "low": 3, "none": 0},
        "pending": {"high": 0, "medium": 4, "low": 2, "none": 0},
    },
    "first_response": {"count": 61, "median_seconds": 2460.0, "p90_seconds": 12840.0},
    "resolution": {"count": 48, "median_seconds": 86400.0, "p90_seconds": 302400.0},
    "sla_breaches": 3,
    "load": [{"email": "sam@example.com", "name": "Sam Agent", "open": 9, "away": False}],
    "triage_sources": {"gemini": 58, "heuristic": 6},
}

TICKET_MERGE: Example = {"into": 41}

_KEPT: Example = {"reviewed": 40, "corrected": 6, "category_kept": 36, "priority_kept": 35}
TRIAGE_QUALITY: Example = {
    "since": "2026-11-30T00:00:00Z",
    "until": "2026-12-06T09:00:00Z",
    "by_source": {"gemini": {"reviewed": 40, "corrected": 6, "category_kept": 36, "priority_kept": 35}},
    "weeks": [
        {
            "source": "gemini",
            "week": "2026-W49",
            "reviewed": 40,
            "corrected": 6,
            "category_kept": 36,
            "priority_kept": 35,
        }
    ],
    "confusion": {"billing": {"billing": 20, "account": 2}, "technical": {"technical": 16, "bug": 2}},
}

CATEGORY: Example = {
    "name": "bug",
    "description": "something that should work and does not (how-to and setup questions are technical)",
    "keywords": ["crash", "error", "broken", "not working"],
}

SATISFACTION: Example = {
    "since": "2026-11-30T00:00:00Z",
    "until": "2026-12-06T09:00:00Z",
    "by_agent": {"sam@example.com": {"good": 12, "bad": 1, "comments": 3}},
    "weeks": [{"agent": "sam@example.com", "week": "2026-W49", "good": 12, "bad": 1, "comments": 3}],
}

DRAFT: Example = {
    "text": "Hello Jane,\n\nsorry about the double charge: we have refunded the second payment of $49 today.",
    "model": "gemini-2.5-flash",
}
