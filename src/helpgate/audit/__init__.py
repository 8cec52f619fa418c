"""The audit log of admin and staff actions."""
