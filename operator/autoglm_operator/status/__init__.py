"""Observed children -> status conditions and the Events their changes deserve; pure."""
