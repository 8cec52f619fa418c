"""IMAP mailboxes to import from, and the leases that let one instance poll each."""
