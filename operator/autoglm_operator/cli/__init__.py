"""The `autoglm` and `kubectl autoglm` commands."""
