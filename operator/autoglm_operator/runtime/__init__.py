"""The operator process: startup, kopf handlers and their in-memory state, the operator's own timers (scheduler.py)."""
