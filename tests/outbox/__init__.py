"""Tests of helpgate.outbox."""
