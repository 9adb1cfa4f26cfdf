#!/usr/bin/env bash
# Builds the runtime image from a local build with no registry access at all: `scratch` plus the
# binary and exactly the shared libraries `ldd` lists for it, a passwd entry for uid 65532 and
# an empty /data owned by it. Same entrypoint, user, ports, volume and health check as
# deploy/Containerfile.
#   deploy/build-image.sh [TAG] [BINARY]
#   TAG defaults to localhost/userprofiles:dev, BINARY to target/release/userprofiles.
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-localhost/userprofiles:dev}
binary=${2:-target/release/userprofiles}
[[ -x $binary ]] || { echo "no binary at $binary (cargo build --release first)"; exit 1; }
command -v buildah >/dev/null || { echo "buildah is needed (apt-get install buildah)"; exit 1; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
install -D "$binary" "$root/usr/local/bin/userprofiles"
# The dynamic loader and every library the binary links, at the same paths.
for lib in $(ldd "$binary" | grep -o '/[^ ]*' | sort -u); do
  install -D "$lib" "$root$lib"
done
install -d "$root/etc" "$root/tmp"
echo "nonroot:x:65532:65532:nonroot:/data:/sbin/nologin" > "$root/etc/passwd"
echo "nonroot:x:65532:" > "$root/etc/group"
install -d -m 0755 "$root/data"

container=$(buildah from scratch)
trap 'buildah rm "$container" >/dev/null 2>&1 || true; rm -rf "$root"' EXIT
buildah copy --chown 65532:65532 "$container" "$root/data" /data >/dev/null
rm -rf "$root/data"
buildah copy "$container" "$root" / >/dev/null
buildah config \
  --user 65532:65532 \
  --env USERPROFILES_GRPC_ADDR=0.0.0.0:50051 \
  --env USERPROFILES_HTTP_ADDR=0.0.0.0:9200 \
  --env USERPROFILES_ADMIN_ADDR=0.0.0.0:9600 \
  --env USERPROFILES_DATA_DIR=/data \
  --env USERPROFILES_LOG_FORMAT=json \
  --port 50051 --port 9200 --port 9600 \
  --volume /data \
  --healthcheck 'CMD ["/usr/local/bin/userprofiles", "healthcheck"]' \
  --healthcheck-interval 10s --healthcheck-timeout 3s --healthcheck-start-period 30s \
  --entrypoint '["/usr/local/bin/userprofiles"]' --cmd '' \
  --label org.opencontainers.image.title=userprofiles \
  --label org.opencontainers.image.source=https://github.com/userprofiles/userprofiles \
  --label "org.opencontainers.image.version=$(git describe --always --dirty 2>/dev/null || echo dev)" \
  --label org.opencontainers.image.licenses=Apache-2.0 \
  "$container"
buildah commit --format docker "$container" "$tag" >/dev/null
echo "built $tag"
