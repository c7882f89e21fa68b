"""Deadlines: rows started and stopped by the workflow's states, counted on the business calendar."""
