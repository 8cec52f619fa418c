"""Tests of helpgate.tickets."""
