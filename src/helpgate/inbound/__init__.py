"""Mail in: transports (SMTP, later IMAP) store raw bytes; the pipeline turns them into tickets."""
