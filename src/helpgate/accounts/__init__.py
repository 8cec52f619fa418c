"""Accounts and sessions: users, sign-in sessions, one-time codes, the skill catalog."""
