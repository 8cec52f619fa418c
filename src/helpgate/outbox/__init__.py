"""The outbox: events every change announces (the live feed), and the workflow runs they start."""
