"""The operator process: startup, kopf handlers and their in-memory state, debouncing."""
