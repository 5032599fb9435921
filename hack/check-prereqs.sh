#!/usr/bin/env bash
# Fails early, with what is missing and how to get it, before anything is built or started.
set -uo pipefail
missing=0
need() { # need CMD "why" "how to install"
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "prereqs: missing '$1' ($2). Install: $3" >&2; missing=1
  fi
}
need python3 "runs the operator, predictor and tests" "Python 3.11+ (Debian: apt-get install python3 python3-venv)"
need go "builds kube-apiserver, etcd, kwok, helm and KEDA from the Go module proxy" "Go >= 1.26 (KEDA 2.20 declares go 1.26.0; https://go.dev/doc/install)"
need java "runs the Kafka broker" "Java 17+ (Debian: apt-get install openjdk-17-jre-headless)"
need mvn "fetches the Kafka jars from Maven Central" "Maven 3 (Debian: apt-get install maven)"
need openssl "creates the API server's service-account key" "Debian: apt-get install openssl"
need dpkg-deb "unpacks Debian's prometheus package" "Debian/Ubuntu only; or set AUTOGLM_PROMETHEUS_BIN to a prometheus 2.x binary"
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "prereqs: python3 is $(python3 -V 2>&1); 3.11 or newer is needed" >&2; missing=1
fi
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  echo "prereqs: python3 has no venv/ensurepip module. Install: apt-get install python3-venv" >&2; missing=1
fi
exit $missing
