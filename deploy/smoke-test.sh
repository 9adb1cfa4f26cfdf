#!/usr/bin/env bash
# Smoke test of the runtime image: builds it from a local binary with build-image.sh, runs it
# with podman as uid 65532 on a read-only root filesystem with a data volume, and checks
# /readyz, the image's health check, an activation over HTTP, the gRPC API (the grpcio client
# script) and that SIGTERM stops it with exit status 0.
#   deploy/smoke-test.sh [BINARY]   (default target/debug/userprofiles: the test build's)
# On these machines podman needs `--runtime runc --network host` and rlimits it may set.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-target/debug/userprofiles}
tag=localhost/userprofiles:smoke
name=userprofiles-smoke-$$
volume=$name-data
password=smoke-Passw0rd-$$
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
grpc=$(port); http=$(port); admin=$(port)

deploy/build-image.sh "$tag" "$binary"
cleanup() {
  podman rm -f "$name" >/dev/null 2>&1 || true
  podman volume rm -f "$volume" >/dev/null 2>&1 || true
}
trap cleanup EXIT
[[ $(podman image inspect "$tag" --format '{{json .Config.Healthcheck.Test}}') == *healthcheck* ]] \
  || { echo "FAIL: the image has no health check"; exit 1; }
podman volume create "$volume" >/dev/null
# The health check is run below with `podman exec`: podman's own timer needs systemd.
podman run -d --name "$name" --runtime runc --network host --no-healthcheck \
  --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 \
  --user 65532:65532 --read-only -v "$volume:/data" \
  -e ELASTIC_PASSWORD="$password" \
  -e USERPROFILES_GRPC_ADDR="127.0.0.1:$grpc" \
  -e USERPROFILES_HTTP_ADDR="127.0.0.1:$http" \
  -e USERPROFILES_ADMIN_ADDR="127.0.0.1:$admin" \
  "$tag" >/dev/null

ready=
for _ in $(seq 100); do
  if [[ $(curl -s -o /dev/null -w '%{http_code}' "127.0.0.1:$admin/readyz") == 200 ]]; then ready=1; break; fi
  sleep 0.2
done
[[ -n $ready ]] || { podman logs "$name"; echo "FAIL: /readyz never answered 200"; exit 1; }
podman exec "$name" /usr/local/bin/userprofiles healthcheck \
  || { echo "FAIL: the image's health check"; exit 1; }
[[ $(podman exec "$name" sh -c true 2>/dev/null; echo $?) != 0 ]] \
  || { echo "FAIL: the image has a shell"; exit 1; }

auth=(-u "elastic:$password" -H 'Content-Type: application/json')
curl -sf "${auth[@]}" -X PUT "127.0.0.1:$http/_security/user/smoke" \
  -d '{"password":"l0ng-r4nd0m-p@ssw0rd","roles":["viewer"],"full_name":"Smoke Test"}' >/dev/null \
  || { echo "FAIL: put user over HTTP"; exit 1; }
uid=$(curl -sf "${auth[@]}" -X POST "127.0.0.1:$http/_security/profile/_activate" \
  -d '{"grant_type":"password","username":"smoke","password":"l0ng-r4nd0m-p@ssw0rd"}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["uid"])') \
  || { echo "FAIL: activation over HTTP"; exit 1; }
[[ $uid == u_* ]] || { echo "FAIL: activation returned uid [$uid]"; exit 1; }
GRPC_ADDR="127.0.0.1:$grpc" ELASTIC_PASSWORD="$password" \
  clients/python/.venv/bin/python clients/python/grpc_client.py \
  || { echo "FAIL: the gRPC API in the container"; exit 1; }

podman stop -t 20 "$name" >/dev/null
status=$(podman inspect "$name" --format '{{.State.ExitCode}}')
[[ $status == 0 ]] || { podman logs "$name" | tail -5; echo "FAIL: exit status $status after SIGTERM"; exit 1; }
echo "smoke test passed: $tag ready, healthy, HTTP and gRPC answered, SIGTERM exit 0"
