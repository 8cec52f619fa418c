"""Use cases. The only code that writes models; each takes plain arguments and returns models."""
