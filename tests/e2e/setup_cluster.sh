#!/usr/bin/env bash
# Bring up the e2e platform on a kind cluster: cert-manager, KServe v0.20.0 (Standard mode, i.e.
# raw Deployments, no Knative/Istio), MinIO, and the shopfloor namespace. Idempotent.
# Needs docker, kind, and .tools/bin/{kubectl,helm} (scripts/install-tools.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export PATH="$root/.tools/bin:$PATH"
cluster="${SHOPFLOOR_KIND_CLUSTER:-shopfloor}"
KSERVE_VERSION="${KSERVE_VERSION:-v0.20.0}"
CERT_MANAGER_VERSION="${CERT_MANAGER_VERSION:-v1.17.2}"

kind get clusters | grep -qx "$cluster" || kind create cluster --name "$cluster" --config "$root/kind-config.yaml" --wait 120s

helm upgrade --install cert-manager cert-manager --repo https://charts.jetstack.io \
  --version "$CERT_MANAGER_VERSION" --namespace cert-manager --create-namespace \
  --set crds.enabled=true --wait --timeout 5m

helm upgrade --install kserve-crd oci://ghcr.io/kserve/charts/kserve-crd --version "$KSERVE_VERSION" \
  --namespace kserve --create-namespace --wait --timeout 5m
helm upgrade --install kserve oci://ghcr.io/kserve/charts/kserve --version "$KSERVE_VERSION" \
  --namespace kserve --set kserve.controller.deploymentMode=Standard \
  --set kserve.controller.gateway.disableIngressCreation=true --wait --timeout 10m

kubectl apply -f "$root/manifests/e2e/minio.yaml"   # namespace first; the pod waits for its Secret
if ! kubectl -n minio get secret minio-root >/dev/null 2>&1; then
  kubectl -n minio create secret generic minio-root \
    --from-literal=MINIO_ROOT_USER="e2e-$(openssl rand -hex 4)" \
    --from-literal=MINIO_ROOT_PASSWORD="$(openssl rand -hex 16)"
fi
kubectl -n minio rollout status deploy/minio --timeout 180s
kubectl apply -k "$root/manifests/base"
