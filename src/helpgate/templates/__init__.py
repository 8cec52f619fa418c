"""Mail templates (package data): a ``<kind>.txt.j2`` and ``<kind>.html.j2`` pair per kind of mail."""
