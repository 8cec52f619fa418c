"""Workflows: functions that react to outbox events, run by Inngest or by the local durable runner."""
