#!/usr/bin/env bash
# The local demo. Today: brings the environment up and shows what the operator would apply for an
# example; it grows into the full rollout + predictive-scaling demo (see the open issues).
set -euo pipefail
cd "$(dirname "$0")/.."
hack/testenv up
echo
echo "== what the operator renders for manifests/examples/01-minimal.yaml =="
.venv/bin/autoglm render -f manifests/examples/01-minimal.yaml | head -n 40
echo "..."
cat <<'TXT'

Next steps:
  eval "$(hack/testenv env)"          # KUBECONFIG, Kafka and Prometheus addresses, kubectl/helm on PATH
  kubectl get nodes -L nvidia.com/gpu.product,autoglm.io/edge-group
  PYTHONPATH=hack .venv/bin/python -m autoglm_testenv.engine --port 8000 &          # a simulated vLLM
  PYTHONPATH=hack .venv/bin/python -m autoglm_testenv.loadgen --target http://127.0.0.1:8000 \
      --trace ../shared/traces/nasa_http_1995_per_minute.csv --start 1995-07-03T08:00 --speedup 60 --scale 0.3
  hack/testenv down                   # stop everything
TXT
