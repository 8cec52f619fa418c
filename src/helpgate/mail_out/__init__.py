"""Mail out: the queue of outbound mail, composing, the transports, the worker that sends, suppressions."""
