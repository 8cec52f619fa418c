"""The agents', admins' and customers' console in the browser: server-rendered pages (Jinja2, htmx) on the
services the API uses, signed in with cookies, live over the event feed. Mounted by the gateway at `/`."""
