"""Tickets and their messages: opening from mail or the API, replies, the ticket list, counters, routing."""
