"""Alerts: the outbox of events and their delivery to webhook subscribers."""
