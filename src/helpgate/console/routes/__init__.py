"""The console's routes: logging in and out, the queue, a ticket, and the live stream."""
