"""The AutoGLM operator. Layers, top to bottom (imports only point down, .importlinter):
cli > runtime > reconcile > rollout > status > render > api (docs/architecture.md)."""
