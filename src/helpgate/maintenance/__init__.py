"""Work on the whole store: archive and restore, retention, and what is waiting in the queues."""
