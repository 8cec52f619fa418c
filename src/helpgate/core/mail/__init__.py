"""Outbound mail: signed Message-IDs and reply addresses, Jinja2 templates, composing, transports, the worker."""
