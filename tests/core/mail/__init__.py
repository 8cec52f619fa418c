"""Tests of core/mail."""
