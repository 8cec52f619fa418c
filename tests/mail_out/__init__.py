"""Tests of helpgate.mail_out."""
