"""Request and response bodies of the API, one module per part of it. Nothing here carries a password hash
or a secret."""
