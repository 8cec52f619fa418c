"""Tests of helpgate.maintenance."""
