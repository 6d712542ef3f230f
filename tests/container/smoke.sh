#!/usr/bin/env bash
# Smoke test of the container image (Containerfile at the repository root).
#
# Nothing can be pulled from a registry here, so the image is built through
# the same Containerfile on a runtime base assembled from this machine's glibc
# (`podman import`), with the prebuilt server binary in place of the Rust
# stage (`--build-context build=DIR`). The production build stage is
# exercised too, with a stand-in Rust image whose `cargo` checks the call, the
# copied sources and the cache mounts, and hands back the same binary:
# everything but the compile itself.
# Then the image runs as it would in production: read-only root, user 65532,
# /tmp on a tmpfs and /data on a volume, ports published on 127.0.0.1. The
# test checks /health and /ready, plays a session with bots (it runs and its
# tick advances), stops the container with SIGTERM and expects the drain to
# finish with exit code 0 within RAMPART_DRAIN_SECONDS, then starts a second
# container on the same volume and expects the session to be resumed.
#
#   bash tests/container/smoke.sh            # from the repository root (or anywhere)
#
# Environment:
#   RAMPART_BIN          server binary to put in the image, relative to the repository
#                        root or absolute (default target/debug/rampart, built with
#                        `cargo build -p rampart-server --bin rampart` if missing)
#   RAMPART_SMOKE_STORE  podman storage for the test (default /var/tmp/rampart-smoke-<uid>)
#   RAMPART_SMOKE_KEEP=1 keep the images, container and volume (for debugging)
#   CI=true              a machine where podman cannot run fails the test instead
#                        of skipping it
#
# Runs as root (the base image is assembled with files owned by 65532);
# installs podman, runc, curl, jq and iproute2 with apt-get when missing.
# Prints a timed line per step and closes with "smoke: N passed, N failed".
# Go templates of podman --format are single-quoted on purpose:
# shellcheck disable=SC2016
set -euo pipefail
cd "$(dirname "$0")/../.."

START=$(date +%s%N)
LAST=$START
step() {
  local now
  now=$(date +%s%N)
  printf '[smoke %6.1fs | +%5.1fs] %s\n' \
    "$(((now - START) / 1000000))e-3" "$(((now - LAST) / 1000000))e-3" "$*"
  LAST=$now
}
PASSED=0
# A group of checks passed: logged like a step, and counted.
passed() {
  PASSED=$((PASSED + 1))
  step "ok: $*"
}
fail() {
  echo "smoke: FAIL: $*" >&2
  echo "smoke: $PASSED passed, 1 failed"
  exit 1
}
# Podman cannot run here: a skip outside CI, a failure in it.
unavailable() {
  if [[ "${CI:-}" == "true" ]]; then
    fail "podman unusable (CI=true): $*"
  fi
  echo "smoke: SKIP: podman unusable on this machine: $*"
  echo "smoke: 0 passed, 0 failed, 1 skipped"
  exit 0
}

DRAIN_SECONDS=10
TOKEN=smoke
RUN_ID="$$-$RANDOM"
TAG="smoke-$RUN_ID"
BASE_IMAGE="localhost/rampart-test-base:$TAG"
RUST_STUB_IMAGE="localhost/rampart-test-rust:$TAG"
IMAGE="localhost/rampart:$TAG"
IMAGE_FROM_BUILD="localhost/rampart:$TAG-build"
VOLUME="rampart-smoke-data-$RUN_ID"
CONTAINER="rampart-smoke-$RUN_ID"
CONTAINER2="rampart-smoke-$RUN_ID-2"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rampart-smoke.XXXXXX")
trap 'rm -rf "$WORK"' EXIT # replaced by the full cleanup once podman works

# ---------------------------------------------------------------- podman ----
step "checking podman"
missing=()
for tool in podman:podman runc:runc curl:curl jq:jq ss:iproute2; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    unavailable "missing ${missing[*]}, which cannot be installed here (not root or no apt-get)"
  fi
  step "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq "${missing[@]}" >"$WORK/apt.log" 2>&1; then
    # The package lists may be missing or stale: refresh them only then.
    { apt-get update -qq && apt-get install -y -qq "${missing[@]}"; } >>"$WORK/apt.log" 2>&1 ||
      { tail -n 20 "$WORK/apt.log" >&2; unavailable "apt-get install ${missing[*]} failed"; }
  fi
fi

# Debian's default containers.conf sets ulimits that runc refuses here.
printf '[containers]\ndefault_ulimits = []\n' >"$WORK/containers.conf"
export CONTAINERS_CONF="$WORK/containers.conf"
STORE="${RAMPART_SMOKE_STORE:-/var/tmp/rampart-smoke-$(id -u)}"
# One store per storage driver (a store cannot change driver): overlay where
# the kernel allows it, else vfs.
DRIVER=""
pm() {
  podman --root "$STORE/${DRIVER:-default}/root" --runroot "$STORE/${DRIVER:-default}/run" \
    --runtime runc ${DRIVER:+--storage-driver "$DRIVER"} "$@"
}
if ! pm info >"$WORK/podman-info.txt" 2>&1; then
  DRIVER=vfs
  pm info >"$WORK/podman-info.txt" 2>&1 ||
    { cat "$WORK/podman-info.txt" >&2; unavailable "podman info fails with the default and vfs storage drivers"; }
fi
step "$(podman --version), storage driver $(pm info --format '{{.Store.GraphDriverName}}'), runtime runc, store $STORE"

cleanup() {
  local status=$?
  if [[ $status -ne 0 ]]; then
    for c in "$CONTAINER" "$CONTAINER2"; do
      if pm container exists "$c" 2>/dev/null; then
        echo "---- logs of $c ----" >&2
        pm logs "$c" 2>&1 | tail -n 60 >&2 || true
      fi
    done
  fi
  if [[ "${RAMPART_SMOKE_KEEP:-}" == "1" ]]; then
    echo "smoke: kept $IMAGE, $CONTAINER, volume $VOLUME (store $STORE) and $WORK"
    return
  fi
  pm rm -v -f -t 0 "$CONTAINER" "$CONTAINER2" >/dev/null 2>&1 || true
  pm volume rm -f "$VOLUME" >/dev/null 2>&1 || true
  pm rmi -f "$IMAGE" "$IMAGE_FROM_BUILD" "$RUST_STUB_IMAGE" "$BASE_IMAGE" >/dev/null 2>&1 || true
  # The store is this test's own: drop the dangling stage images as well.
  pm image prune -f >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# ---------------------------------------------------------------- binary ----
BIN="${RAMPART_BIN:-target/debug/rampart}"
if [[ ! -x "$BIN" ]]; then
  [[ -z "${RAMPART_BIN:-}" ]] || fail "RAMPART_BIN=$BIN is not an executable"
  step "building $BIN (cargo build -p rampart-server --bin rampart)"
  cargo build -p rampart-server --bin rampart
fi
# Stands for the build stage (named context `build`): out/rampart and an
# empty out/data/, as the stage leaves them.
STAGE="$WORK/stage"
mkdir -p "$STAGE/out/data"
if command -v strip >/dev/null; then
  strip --strip-debug -o "$STAGE/out/rampart" "$BIN"
else
  cp "$BIN" "$STAGE/out/rampart"
fi
chmod 0755 "$STAGE/out/rampart"
step "binary $BIN ($(du -h "$BIN" | cut -f1), $(du -h "$STAGE/out/rampart" | cut -f1) without debug info)"

# ------------------------------------------------------------ base image ----
# The runtime base: what gcr.io/distroless/cc-debian12:nonroot offers the
# binary, taken from this machine: the dynamic loader and the libraries ldd
# names, CA certificates, /etc/passwd and /etc/group with root and nonroot
# (65532), /tmp (1777) and /home/nonroot. No shell, like distroless.
copy_with_libs() { # ROOTFS FILE...: the files and every library they load
  local rootfs=$1 lib
  shift
  for file in "$@"; do
    mkdir -p "$rootfs$(dirname "$file")"
    cp -L "$file" "$rootfs$file"
    for lib in $(ldd "$file" 2>/dev/null | grep -oE '/[^ ]+' || true); do
      if [[ -e "$lib" && ! -e "$rootfs$lib" ]]; then
        mkdir -p "$rootfs$(dirname "$lib")"
        cp -L "$lib" "$rootfs$lib"
      fi
    done
  done
}
BASE="$WORK/base"
mkdir -p "$BASE"/{etc,tmp,home/nonroot,usr/local/bin}
libs=$(ldd "$STAGE/out/rampart" | grep -oE '/[^ ]+') || fail "ldd $BIN failed (a static binary needs no base: use scratch)"
for lib in $libs; do
  mkdir -p "$BASE$(dirname "$lib")"
  cp -L "$lib" "$BASE$lib"
done
chmod 1777 "$BASE/tmp"
chown 65532:65532 "$BASE/home/nonroot"
cat >"$BASE/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
cat >"$BASE/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
nonroot:x:65532:
EOF
if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
  mkdir -p "$BASE/etc/ssl/certs"
  cp /etc/ssl/certs/ca-certificates.crt "$BASE/etc/ssl/certs/"
fi
tar -C "$BASE" --numeric-owner -cf "$WORK/base.tar" .
pm import -q "$WORK/base.tar" "$BASE_IMAGE" >/dev/null
step "imported runtime base $BASE_IMAGE: ${libs//$'\n'/ }"

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)

# ------------------------------------------------ stand-in Rust image ----
# A stand-in for the Rust image: bash, the coreutils the build step calls,
# and a `cargo` that checks the call and the copied workspace, then leaves the
# binary where cargo would. The real compile is the only part not run.
RUST="$WORK/rust"
mkdir -p "$RUST/tmp" "$RUST/usr/bin" "$RUST/usr/local/cargo/bin" "$RUST/stub"
ln -s usr/bin "$RUST/bin" # merged /usr, as in Debian
chmod 1777 "$RUST/tmp"
for tool in bash mkdir install cat sed tr; do
  copy_with_libs "$RUST" "$(readlink -f "$(command -v $tool)")"
  [[ -e "$RUST/usr/bin/$tool" ]] || ln -s "$(readlink -f "$(command -v $tool)")" "$RUST/usr/bin/$tool"
done
ln -s bash "$RUST/usr/bin/sh"
cp "$STAGE/out/rampart" "$RUST/stub/rampart"
cat >"$RUST/usr/local/cargo/bin/cargo" <<'EOF'
#!/bin/bash
# Stand-in for cargo in tests/container/smoke.sh: checks what the Containerfile
# asks and provides, then writes the prebuilt binary as the release build.
set -euo pipefail
[[ "$*" == "build --release --locked -p rampart-server --bin rampart" ]] ||
  { echo "stub cargo: unexpected arguments: $*" >&2; exit 1; }
for f in Cargo.toml Cargo.lock rampart.toml.example .cargo/config.toml server/src/main.rs \
  persistence/migrations/sqlite persistence/migrations/postgres; do
  [[ -e "$f" ]] || { echo "stub cargo: $f not in the build stage" >&2; exit 1; }
done
# Every workspace member's manifest (cargo loads them all).
members=$(sed -n 's/^members = \[\(.*\)\]/\1/p' Cargo.toml | tr -d '" ' | tr ',' ' ')
[[ -n "$members" ]] || { echo "stub cargo: no members in Cargo.toml" >&2; exit 1; }
for m in $members; do
  [[ -f "$m/Cargo.toml" ]] || { echo "stub cargo: member $m missing" >&2; exit 1; }
done
# Every patched dependency ([patch.crates-io] path = "...").
for p in $(sed -n 's/^[a-z_-]* = { path = "\(vendor\/[^"]*\)" }$/\1/p' Cargo.toml); do
  [[ -f "$p/Cargo.toml" ]] || { echo "stub cargo: patched $p missing" >&2; exit 1; }
done
# The registry, git and target directories are cache mounts.
for dir in /usr/local/cargo/registry /usr/local/cargo/git /src/target; do
  while read -r _ _ _ _ point _; do
    [[ "$point" == "$dir" ]] && continue 2
  done </proc/self/mountinfo
  echo "stub cargo: $dir is not a cache mount" >&2
  exit 1
done
mkdir -p target/release
install -m 0755 /stub/rampart target/release/rampart
echo "stub cargo: checked $members"
EOF
chmod 0755 "$RUST/usr/local/cargo/bin/cargo"
tar -C "$RUST" --numeric-owner -cf "$WORK/rust.tar" .
pm import -q --change 'ENV PATH=/usr/local/cargo/bin:/usr/bin:/bin' --change 'ENV CARGO_HOME=/usr/local/cargo' \
  "$WORK/rust.tar" "$RUST_STUB_IMAGE" >/dev/null
# Can podman run a container here at all? (A failure further on is the
# image's or the server's.)
pm run --rm --pull=never --network none "$RUST_STUB_IMAGE" /bin/bash -c 'exit 0' >"$WORK/probe.log" 2>&1 ||
  { cat "$WORK/probe.log" >&2; unavailable "podman cannot run a container (runtime runc)"; }
step "podman runs containers"

# --------------------------------------------- image, prebuilt binary ----
pm build -q --pull=never -f Containerfile --build-context "build=$STAGE" \
  --build-arg RUNTIME_IMAGE="$BASE_IMAGE" \
  --build-arg VERSION="$VERSION" --build-arg REVISION="$REVISION" \
  -t "$IMAGE" . >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log" >&2; fail "podman build (prebuilt) failed"; }
passed "built $IMAGE from the prebuilt binary ($(pm image inspect --format '{{.Size}}' "$IMAGE" | numfmt --to=iec))"

# ------------------------------------ image, build stage with stub cargo ----
pm build --pull=never -f Containerfile \
  --build-arg RUST_IMAGE="$RUST_STUB_IMAGE" --build-arg RUNTIME_IMAGE="$BASE_IMAGE" \
  --build-arg VERSION="$VERSION" --build-arg REVISION="$REVISION" \
  -t "$IMAGE_FROM_BUILD" . >"$WORK/build-stage.log" 2>&1 ||
  { cat "$WORK/build-stage.log" >&2; fail "podman build (build stage with stub cargo) failed"; }
grep -q 'stub cargo: checked' "$WORK/build-stage.log" || fail "the build stage did not run cargo"
pm run --rm --read-only --pull=never "$IMAGE_FROM_BUILD" check >"$WORK/check.txt" 2>&1 ||
  { cat "$WORK/check.txt" >&2; fail "'rampart check' in the image from the build stage failed"; }
passed "built $IMAGE_FROM_BUILD through the build stage (stub cargo); 'rampart check': $(tail -n 1 "$WORK/check.txt")"

# --------------------------------------------------------- image config ----
inspect() { pm image inspect --format "$1" "$IMAGE"; }
expect() { # WHAT ACTUAL EXPECTED
  [[ "$2" == "$3" ]] || fail "$1: got '$2', expected '$3'"
}
expect "user" "$(inspect '{{.Config.User}}')" "65532:65532"
expect "stop signal" "$(inspect '{{.Config.StopSignal}}')" "SIGTERM"
expect "entrypoint" "$(inspect '{{json .Config.Entrypoint}}')" '["/usr/local/bin/rampart"]'
expect "cmd" "$(inspect '{{json .Config.Cmd}}')" '["serve"]'
expect "workdir" "$(inspect '{{.Config.WorkingDir}}')" "/app"
for label in source title description; do
  [[ -n "$(inspect "{{index .Config.Labels \"org.opencontainers.image.$label\"}}")" ]] ||
    fail "label org.opencontainers.image.$label missing"
done
expect "version label" "$(inspect '{{index .Config.Labels "org.opencontainers.image.version"}}')" "$VERSION"
expect "revision label" "$(inspect '{{index .Config.Labels "org.opencontainers.image.revision"}}')" "$REVISION"
expect "licenses label" "$(inspect '{{index .Config.Labels "org.opencontainers.image.licenses"}}')" "MIT OR Apache-2.0"
env_list=$(inspect '{{range .Config.Env}}{{println .}}{{end}}')
for kv in RAMPART_DATA_DIR=/data RAMPART_ASSETS=/app/assets RAMPART_HTTP_ADDR=0.0.0.0:8000 \
  RAMPART_UDP_ADDR=0.0.0.0:5000 RAMPART_WS_ADDR=0.0.0.0:5080; do
  grep -qx "$kv" <<<"$env_list" || fail "ENV $kv missing"
done
ports=$(inspect '{{range $p, $v := .Config.ExposedPorts}}{{println $p}}{{end}}' | grep . | sort | tr '\n' ' ')
expect "exposed ports" "$ports" "5000/udp 5001/udp 5002/udp 5003/udp 5080/tcp 8000/tcp "
volumes=$(inspect '{{range $p, $v := .Config.Volumes}}{{println $p}}{{end}}' | grep . | sort | tr '\n' ' ')
expect "volumes" "$volumes" "/data /tmp "
# Both build paths give the same image configuration.
expect "config of the build-stage image" \
  "$(pm image inspect --format '{{json .Config}}' "$IMAGE_FROM_BUILD")" "$(inspect '{{json .Config}}')"
# Files: the binary and assets root's and read-only to the user, /data the user's.
c=$(pm create --pull=never "$IMAGE")
pm export "$c" | tar --numeric-owner -tvf - >"$WORK/files.txt"
pm rm -v "$c" >/dev/null
grep -qE '^drwx.* 65532/65532 .* data/$' "$WORK/files.txt" || fail "/data is not owned by 65532: $(grep ' data/$' "$WORK/files.txt")"
grep -qE '^-rwxr-xr-x 0/0 .* usr/local/bin/rampart$' "$WORK/files.txt" || fail "/usr/local/bin/rampart is not root's 0755"
grep -qE ' 0/0 .* app/assets/maps/small.toml$' "$WORK/files.txt" || fail "assets missing from /app/assets"
! grep -E ' 65532/' "$WORK/files.txt" | grep -vqE ' (data|home/nonroot)/$' ||
  fail "files owned by 65532 besides /data: $(grep ' 65532/' "$WORK/files.txt")"
passed "image config: user 65532:65532, SIGTERM, OCI labels (version $VERSION), ENV, ports, volumes, file owners"

# The image's own defaults, as a bare `podman run --read-only IMAGE migrate`
# gets them: its user, and anonymous volumes for /data (which take the
# image directory's owner, 65532, so the database can be created) and /tmp.
pm run --rm --pull=never --read-only --network none "$IMAGE" migrate >"$WORK/migrate.txt" 2>&1 ||
  { cat "$WORK/migrate.txt" >&2; fail "'rampart migrate' with the image's defaults (anonymous /data volume) failed"; }
passed "'rampart migrate' with the image's defaults: $(tail -n 1 "$WORK/migrate.txt" | cut -c1-120)"

# ------------------------------------------------------------------ run ----
# Free host ports on 127.0.0.1: HTTP, WebSocket, and four UDP ports in a row.
port_free() { # PORT tcp|udp
  local flag=-Htan
  [[ $2 == udp ]] && flag=-Huan
  ! ss "$flag" 2>/dev/null | awk '{print $4}' | grep -qE "[:.]$1\$"
}
pick_ports() {
  for _ in $(seq 1 50); do
    local p=$((20000 + RANDOM % 30000))
    if port_free $p tcp && port_free $((p + 1)) tcp && port_free $((p + 2)) udp &&
      port_free $((p + 3)) udp && port_free $((p + 4)) udp && port_free $((p + 5)) udp; then
      echo $p
      return
    fi
  done
  fail "no free ports found"
}
# The image's own assets plus `sprint` (a whole game in about 20 s, the
# content the Rust end-to-end tests use too), mounted read-only over
# /app/assets, so one session can be played to its end.
cp -r assets "$WORK/assets"
cp -r tests/fixtures/quick-assets/. "$WORK/assets/"
chmod -R a+rX "$WORK/assets"

P=$(pick_ports)
HTTP_PORT=$P WS_PORT=$((P + 1)) UDP_PORT=$((P + 2))
URL="http://127.0.0.1:$HTTP_PORT"
pm volume create "$VOLUME" >/dev/null

run_server() { # NAME
  pm run -d --pull=never --name "$1" \
    --read-only --read-only-tmpfs=false --tmpfs /tmp:rw,size=64m,mode=1777 \
    --user 65532:65532 --volume "$VOLUME:/data" --volume "$WORK/assets:/app/assets:ro" \
    -e RAMPART_ADMIN_TOKEN="$TOKEN" -e RAMPART_DRAIN_SECONDS="$DRAIN_SECONDS" \
    -p "127.0.0.1:$HTTP_PORT:8000/tcp" -p "127.0.0.1:$WS_PORT:5080/tcp" \
    -p "127.0.0.1:$UDP_PORT-$((UDP_PORT + 3)):5000-5003/udp" \
    "$IMAGE" >/dev/null
}
wait_health() { # NAME
  for _ in $(seq 1 120); do
    if curl -fsS -o /dev/null "$URL/health" 2>/dev/null; then return; fi
    [[ "$(pm inspect --format '{{.State.Running}}' "$1")" == "true" ]] || fail "$1 exited during startup"
    sleep 0.25
  done
  fail "$1: /health did not answer within 30 s"
}
# HTTP status and body of a request: sets CODE and BODY.
request() {
  local out
  out=$(curl -sS -w '\n%{http_code}' "$@") || fail "curl $*"
  CODE=${out##*$'\n'}
  BODY=${out%$'\n'*}
}
session_field() { jq -r ".$1" <<<"$BODY"; }

run_server "$CONTAINER"
wait_health "$CONTAINER"
passed "container $CONTAINER up: /health 200 on $URL (UDP $UDP_PORT-$((UDP_PORT + 3)), WebSocket $WS_PORT)"

expect "read-only root" "$(pm inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$CONTAINER")" "true"
expect "mounts" "$(pm inspect --format '{{range .Mounts}}{{.Destination}}:{{.RW}} {{end}}' "$CONTAINER")" "/data:true /app/assets:false "
tmpfs=$(pm inspect --format '{{range $k, $v := .HostConfig.Tmpfs}}{{$k}} {{end}}' "$CONTAINER")
expect "tmpfs mounts" "$tmpfs" "/tmp "
expect "user" "$(pm inspect --format '{{.Config.User}}' "$CONTAINER")" "65532:65532"
passed "container: read-only root, user 65532:65532, writable only /data (volume) and /tmp (tmpfs); test assets mounted read-only"

request "$URL/ready"
expect "GET /ready ($BODY)" "$CODE" "200"
request "$URL/v1/maps"
expect "GET /v1/maps" "$CODE" "200"
jq -e 'map(.key) | index("small")' <<<"$BODY" >/dev/null || fail "map small not listed: $BODY"
(exec 3<>"/dev/tcp/127.0.0.1/$WS_PORT") 2>/dev/null || fail "WebSocket port $WS_PORT not reachable"
request -X POST -H 'Content-Type: application/json' -d '{"map":"small"}' "$URL/v1/sessions"
expect "POST /v1/sessions without the admin token" "$CODE" "401"
passed "/ready 200, /v1/maps lists small, WebSocket port open, creation needs the admin token"
request -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"map":"small","max_players":2,"bots":2,"seed":7}' "$URL/v1/sessions"
expect "POST /v1/sessions ($BODY)" "$CODE" "201"
SESSION=$(session_field id)
passed "session $SESSION created: $(jq -c '{state,players,bots,tick}' <<<"$BODY")"

# Plays: running, and its tick advances at the tick rate for a few seconds.
first_tick=""
for _ in $(seq 1 40); do
  request "$URL/v1/sessions/$SESSION"
  expect "GET /v1/sessions/$SESSION" "$CODE" "200"
  if [[ "$(session_field state)" == "running" ]]; then
    if [[ -z "$first_tick" ]]; then
      first_tick=$(session_field tick)
      first_at=$(date +%s%N)
    elif (($(date +%s%N) - first_at > 3000000000)); then
      break
    fi
  fi
  sleep 0.25
done
[[ -n "$first_tick" ]] || fail "session never running: $BODY"
last_tick=$(session_field tick)
((last_tick >= first_tick + 30)) || fail "tick did not advance: $first_tick -> $last_tick ($BODY)"
passed "session plays: tick $first_tick -> $last_tick in 3 s ($(jq -c '{state,wave,lives,towers,enemies}' <<<"$BODY"))"
request "$URL/metrics"
grep -q '^rampart_sessions{state="running"} 1' <<<"$BODY" || fail "metrics do not show the running session"

# A whole game: two bots on `sprint`, played to its end.
request -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"map":"sprint","max_players":2,"bots":2,"seed":11}' "$URL/v1/sessions"
expect "POST /v1/sessions sprint ($BODY)" "$CODE" "201"
GAME=$(session_field id)
for _ in $(seq 1 240); do
  request "$URL/v1/sessions/$GAME"
  [[ "$(session_field state)" == "ended" ]] && break
  sleep 0.25
done
[[ "$(session_field state)" == "ended" ]] || fail "the sprint game did not end within 60 s: $BODY"
outcome=$(session_field outcome)
[[ "$outcome" == "victory" || "$outcome" == "defeat" ]] || fail "the game ended without an outcome: $BODY"
passed "session $GAME played to its end: $outcome at tick $(session_field tick) ($(jq -c '{wave,lives}' <<<"$BODY"))"

# Nothing was written to the root filesystem (it cannot be: read-only). The
# one change podman itself makes before the server starts: /etc, where it
# mounts hosts, hostname and resolv.conf.
changes=$(pm diff "$CONTAINER" | grep -vxE 'C /etc|[AC] /(data|tmp)' || true)
[[ -z "$changes" ]] || fail "changes in the root filesystem: $changes"
passed "metrics show the running session; nothing written to the root filesystem"

# ---------------------------------------------------------- SIGTERM stop ----
stop_and_check() { # NAME
  local t0 t1 code logs
  t0=$(date +%s%N)
  pm stop --time $((DRAIN_SECONDS + 5)) "$1" >/dev/null
  t1=$(date +%s%N)
  code=$(pm inspect --format '{{.State.ExitCode}}' "$1")
  logs=$(pm logs "$1" 2>&1)
  STOP_MS=$(((t1 - t0) / 1000000))
  expect "$1 exit code after SIGTERM (stopped in $STOP_MS ms)" "$code" "0"
  ((STOP_MS <= DRAIN_SECONDS * 1000 + 2000)) || fail "$1 took $STOP_MS ms to stop (drain $DRAIN_SECONDS s)"
  for phase in "drain phase 1/3" "drain phase 2/3: every session told and handed over" "drain phase 3/3"; do
    grep -q "$phase" <<<"$logs" || fail "$1: no '$phase' in the logs"
  done
  grep "drain phase 3/3" <<<"$logs" | grep -q 'clean=true' || fail "$1: drain not clean: $(grep 'drain' <<<"$logs")"
  grep -E 'drain' <<<"$logs" | sed 's/^/    /'
  if grep -iE 'read-only file system|permission denied' <<<"$logs"; then
    fail "$1 logged a write failure (see above)"
  fi
}
stop_and_check "$CONTAINER"
passed "SIGTERM: exit 0 in $STOP_MS ms, drain phases 1-3 logged, clean"

data_dir=$(pm volume inspect --format '{{.Mountpoint}}' "$VOLUME")
[[ -s "$data_dir/rampart.db" ]] || fail "no rampart.db in /data: $(ls -la "$data_dir")"
[[ "$(stat -c %u "$data_dir/rampart.db")" == "65532" ]] || fail "rampart.db not owned by 65532"
passed "the volume holds /data/rampart.db, owned by 65532 ($(du -h "$data_dir/rampart.db" | cut -f1))"

# ---------------------------------------------- restart on the same data ----
run_server "$CONTAINER2"
wait_health "$CONTAINER2"
resumed=""
for _ in $(seq 1 40); do
  request "$URL/v1/sessions/$SESSION"
  if [[ "$CODE" == "200" && "$(session_field state)" == "running" ]] && (($(session_field tick) > last_tick)); then
    resumed=$(session_field tick)
    break
  fi
  sleep 0.25
done
[[ -n "$resumed" ]] || fail "session $SESSION not resumed from /data after a restart: $CODE $BODY"
stop_and_check "$CONTAINER2"
passed "second container on the same volume resumed session $SESSION (tick $resumed); SIGTERM exit 0 in $STOP_MS ms"

echo "smoke: container image OK in $((($(date +%s%N) - START) / 1000000000)) s"
echo "smoke: $PASSED passed, 0 failed"
