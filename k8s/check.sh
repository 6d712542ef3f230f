#!/usr/bin/env bash
# Offline validation of rampart's Kubernetes manifests; no cluster needed.
# Run from anywhere: bash k8s/check.sh   (CI: the last step of .ci/run)
#
#   1. yamllint over k8s/ (k8s/.yamllint)
#   2. kubectl kustomize: base, overlays/dev, overlays/prod, agones
#   3. built-in kinds of each render against the Kubernetes 1.34 and 1.36
#      OpenAPI schemas (kubernetes-validate --strict: unknown fields fail)
#   4. Agones kinds against the Agones 1.60 CRD schemas (jsonschema)
#   5. rampart's own rules (k8s/tools/checks.py rules)
#   6. promtool check rules / test rules on the PrometheusRule's groups,
#      and every alert's runbook anchor in docs/OPERATIONS.md
#   7. the fixtures in k8s/tests/broken/: each breaks one rule, and the
#      check named in its `expect` file must reject it for that reason
#
# Installs what it lacks, once (as root on Debian 12, like CI): yamllint
# (apt), promtool (extracted from Debian's prometheus package into the
# cache directory: installing the package would also start a Prometheus
# server), and a Python venv with kubernetes-validate, jsonschema and PyYAML
# in $RAMPART_K8S_CACHE (default ~/.cache/rampart-k8s-check). Needs kubectl
# (its built-in kustomize) and python3 >= 3.11. Takes about 20 s once the
# tools are there, about a minute the first time.
set -euo pipefail

started=$SECONDS
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
K8S="$ROOT/k8s"
CACHE="${RAMPART_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rampart-k8s-check}"
# kubernetes-validate bundles the schemas of many Kubernetes releases;
# 1.37.0 is the newest release and carries 1.34 and 1.36 (and 1.37).
PIP_PACKAGES=(kubernetes-validate==1.37.0 jsonschema==4.26.0 PyYAML==6.0.3)
K8S_VERSIONS=(1.34.0 1.36.0)
export AGONES_CRDS="${AGONES_CRDS:-$ROOT/../shared/agones/crds-1.60.yaml}"
TARGETS=(base overlays/dev overlays/prod agones)

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
failures=0

say() { printf '%s\n' "$*"; }
ok() { printf 'ok    %s\n' "$*"; }
bad() { printf 'FAIL  %s\n' "$*"; failures=$((failures + 1)); }
indent() { sed 's/^/      /'; }

# --- tools ---------------------------------------------------------------

apt_updated=0
apt_install() {
  if [ "$(id -u)" != 0 ]; then
    say "missing: $* (run as root to install, or install it yourself)"; exit 1
  fi
  if [ "$apt_updated" = 0 ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >"$WORK/apt.log" 2>&1 \
    || { cat "$WORK/apt.log"; say "apt-get install $* failed"; exit 1; }
}

command -v kubectl >/dev/null || { say "kubectl is needed (its built-in kustomize renders k8s/)"; exit 1; }
command -v yamllint >/dev/null || apt_install yamllint

PROMTOOL="$(command -v promtool || true)"
if [ -z "$PROMTOOL" ]; then
  PROMTOOL="$CACHE/prometheus/usr/bin/promtool"
  if [ ! -x "$PROMTOOL" ]; then
    if [ "$apt_updated" = 0 ]; then apt-get update -qq; apt_updated=1; fi
    # (grep reads the whole output: with pipefail, grep -q could SIGPIPE apt-cache)
    if ! apt-cache policy prometheus | grep 'Candidate: [0-9]' >/dev/null; then
      say "promtool: no prometheus package in the apt sources"; exit 1
    fi
    mkdir -p "$CACHE/deb"
    (cd "$CACHE/deb" && rm -f prometheus_*.deb && apt-get download -qq prometheus 2>/dev/null)
    dpkg-deb -x "$CACHE"/deb/prometheus_*.deb "$CACHE/prometheus"
    rm -rf "$CACHE/deb"
  fi
fi

VENV="$CACHE/venv"
if [ "$(cat "$VENV/.packages" 2>/dev/null)" != "${PIP_PACKAGES[*]}" ]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$VENV"; }
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PIP_PACKAGES[@]}"
  printf '%s' "${PIP_PACKAGES[*]}" > "$VENV/.packages"
fi
PY="$VENV/bin/python"
"$PY" -c 'import sys; assert sys.version_info >= (3, 11), "python >= 3.11 (tomllib) needed"'
[ -f "$AGONES_CRDS" ] || { say "Agones CRDs not found at $AGONES_CRDS (set AGONES_CRDS)"; exit 1; }
say "tools: $(kubectl version --client 2>/dev/null | grep -i kustomize), $("$PROMTOOL" --version 2>&1 | head -1)," \
  "$(yamllint --version), kubernetes-validate $("$VENV/bin/kubernetes-validate" --version 2>&1 | tail -1)"

# --- the checks: each takes a rendered file, prints why it rejects it,
#     and returns non-zero then --------------------------------------------

check_schema() {  # built-in kinds against Kubernetes' OpenAPI schemas
  local file=$1 core="$WORK/core.$RANDOM.yaml" out rc=0
  "$PY" "$K8S/tools/checks.py" core "$file" "$core" >/dev/null
  for version in "${K8S_VERSIONS[@]}"; do
    out="$("$VENV/bin/kubernetes-validate" --strict --quiet -k "$version" "$core" 2>&1)" || rc=1
    # No warning is acceptable on a built-in kind either.
    if [ -n "$out" ]; then printf '%s\n' "$out"; rc=1; fi
  done
  return $rc
}

check_agones() { "$PY" "$K8S/tools/checks.py" agones "$@"; }

check_rules() { "$PY" "$K8S/tools/checks.py" rules "$1"; }

check_promtool() {  # the PrometheusRule's groups: syntax, then the unit tests
  local dir
  dir="$(mktemp -d "$WORK/prom.XXXX")"
  "$PY" "$K8S/tools/checks.py" prom-rules "$1" "$dir/rules.yaml" >/dev/null || return 1
  cp "$K8S/tests/alerts.test.yaml" "$dir/"
  "$PROMTOOL" check rules "$dir/rules.yaml" >/dev/null 2>"$dir/err" || { cat "$dir/err"; return 1; }
  (cd "$dir" && "$PROMTOOL" test rules alerts.test.yaml 2>&1) | grep -v '^Unit Testing:\|^$' | grep -v '^  SUCCESS$' || true
  (cd "$dir" && "$PROMTOOL" test rules alerts.test.yaml >/dev/null 2>&1)
}

check_alerts() {  # severity, annotations, runbook anchors, a firing test each
  local dir
  dir="$(mktemp -d "$WORK/alerts.XXXX")"
  "$PY" "$K8S/tools/checks.py" prom-rules "$1" "$dir/rules.yaml" >/dev/null || return 1
  "$PY" "$K8S/tools/checks.py" alerts "$dir/rules.yaml" "$K8S/tests/alerts.test.yaml" "$ROOT/docs/OPERATIONS.md"
}

# run NAME CHECK ARGS...: one line per check, details indented on failure.
run() {
  local name=$1 out; shift
  if out="$("$@" 2>&1)"; then
    ok "$name${out:+: $(printf '%s' "$out" | tail -1)}"
  else
    bad "$name"; printf '%s\n' "$out" | indent
  fi
}

# --- 1. yamllint ---------------------------------------------------------
say "== 1. yamllint"
run "yamllint k8s/" yamllint --strict -c "$K8S/.yamllint" "$K8S"

# --- 2. render -----------------------------------------------------------
say "== 2. kustomize"
for target in "${TARGETS[@]}"; do
  render="$WORK/${target//\//-}.yaml"
  if out="$(kubectl kustomize "$K8S/$target" 2>&1 > "$render")"; then
    ok "kustomize k8s/$target: $(grep -c '^kind:' "$render") resources"
  else
    bad "kustomize k8s/$target"; printf '%s\n' "$out" | indent
  fi
done

# --- 3-5. each render ----------------------------------------------------
say "== 3. Kubernetes ${K8S_VERSIONS[*]} schemas (strict)"
for target in "${TARGETS[@]}"; do
  run "schema k8s/$target" check_schema "$WORK/${target//\//-}.yaml"
done
say "== 4. Agones 1.60 CRD schemas"
run "agones k8s/agones + examples/gameserverallocation.yaml (hand-written schema: no CRD exists)" \
  check_agones "$WORK/agones.yaml" "$K8S/agones/examples/gameserverallocation.yaml"
say "== 5. rampart rules"
for target in "${TARGETS[@]}"; do
  run "rules k8s/$target" check_rules "$WORK/${target//\//-}.yaml"
done
run "prometheus-adapter rule serves the HPA's metric" \
  "$PY" "$K8S/tools/checks.py" adapter "$WORK/overlays-prod.yaml" "$K8S/overlays/prod/prometheus-adapter-rules.yaml"

# --- 6. alerts -----------------------------------------------------------
say "== 6. alerts (promtool $("$PROMTOOL" --version 2>&1 | head -1 | awk '{print $3}'))"
run "promtool check + test rules (k8s/tests/alerts.test.yaml)" check_promtool "$WORK/base.yaml"
run "alerts: severity, annotations, runbook anchors in docs/OPERATIONS.md" check_alerts "$WORK/base.yaml"
same_rules() {  # every variant ships the same alerts (from k8s/common)
  local target
  for target in "${TARGETS[@]:1}"; do
    cmp -s <("$PY" "$K8S/tools/checks.py" prom-rules "$WORK/base.yaml" /dev/stdout) \
           <("$PY" "$K8S/tools/checks.py" prom-rules "$WORK/${target//\//-}.yaml" /dev/stdout) \
      || { echo "k8s/$target's PrometheusRule differs from k8s/base's"; return 1; }
  done
}
run "every variant ships the same alerts" same_rules

# --- 7. broken fixtures must be rejected ---------------------------------
say "== 7. broken fixtures (each must be rejected by the check named in its expect file)"
for dir in "$K8S"/tests/broken/*/; do
  name="$(basename "$dir")"
  check="$(sed -n 1p "$dir/expect")"
  reason="$(sed -n 2p "$dir/expect")"
  if [ -f "$dir/kustomization.yaml" ]; then
    render="$WORK/broken-$name.yaml"
    if ! out="$(kubectl kustomize "$dir" 2>&1 > "$render")"; then
      bad "fixture $name does not render"; printf '%s\n' "$out" | indent; continue
    fi
  else
    render="$dir/rendered.yaml"
  fi
  if out="$("check_$check" "$render" 2>&1)"; then
    bad "fixture $name: check $check ACCEPTED it"
  elif ! grep -qF -- "$reason" <<<"$out"; then
    bad "fixture $name: check $check rejected it, but not for: $reason"; printf '%s\n' "$out" | indent
  else
    ok "fixture $name rejected by $check: $(grep -F -m1 -- "$reason" <<<"$out" | sed 's/^ *//' | cut -c1-110)"
  fi
done

say ""
if [ "$failures" -gt 0 ]; then
  say "k8s/check.sh: $failures FAILED ($((SECONDS - started)) s)"
  exit 1
fi
say "k8s/check.sh: all passed ($((SECONDS - started)) s)"
