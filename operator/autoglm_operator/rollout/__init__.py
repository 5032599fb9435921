"""Which revision takes traffic: the no-canary switch, the canary state machine, its analysis,
and one converge's traffic plan."""
