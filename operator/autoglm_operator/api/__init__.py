"""The AutoGLMDeployment API: spec and status types, the CRD generated from them, the revision
hash, names and labels, engine profiles, and what the predictor shares (the load query)."""
