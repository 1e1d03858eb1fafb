#!/bin/bash
# Build docker/Dockerfile (CPU) or docker/Dockerfile.cuda with podman on a machine without a
# registry, a systemd cgroup or direct HTTPS: the recipe of docs/clusters.md as one script. Run it
# from anywhere, as root (debootstrap and rootful podman).
#
#   docker/build-image.sh                                      # docker/Dockerfile -> hardspoof:cpu
#   MODELS= FRONTENDS= docker/build-image.sh                   # no weights baked in (hub unreachable)
#   DOCKERFILE=docker/Dockerfile.cuda TORCH_INDEX= MODELS= FRONTENDS= docker/build-image.sh
#                                                              # -> hardspoof:cuda on the same base
#
# Steps:
#  1. A base image without a registry: `debootstrap --variant=minbase bookworm` with python3,
#     python3-venv and ca-certificates (Python 3.11, like python:3.11-slim), imported as
#     $BASE_IMAGE. Skipped when that image exists.
#  2. `podman build` with that base as the Dockerfile's base-image argument (PYTHON_IMAGE for
#     Dockerfile, CUDA_IMAGE for Dockerfile.cuda), `--runtime runc` (crun refuses hybrid
#     cgroups), fixed ulimits (the defaults ask for more than such a host allows), the
#     Dockerfile's own .dockerignore, and the host's CA bundle mounted into every RUN (HTTPS
#     through an intercepting proxy).
#  3. torch from TORCH_INDEX when it answers (default: the CPU index for Dockerfile, cu130 for
#     Dockerfile.cuda), else from the package index (whose Linux x86 torch is the CUDA build).
#
# Knobs (environment): DOCKERFILE (path, relative to the repository root or absolute), IMAGE,
# BASE_IMAGE, BASE_ARG (the Dockerfile's base-image ARG), ENGINE (podman|docker), RUNTIME,
# CA_BUNDLE (a host file, empty = none), TORCH_INDEX (empty = the package index), MODELS,
# FRONTENDS (passed on only when set), MIRROR.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DOCKERFILE=${DOCKERFILE:-docker/Dockerfile}
[[ $DOCKERFILE == /* ]] || DOCKERFILE=$ROOT/$DOCKERFILE
case $(basename "$DOCKERFILE") in
  *.cuda) flavour=cuda default_arg=CUDA_IMAGE default_index=https://download.pytorch.org/whl/cu130 ;;
  *) flavour=cpu default_arg=PYTHON_IMAGE default_index=https://download.pytorch.org/whl/cpu ;;
esac
IMAGE=${IMAGE:-hardspoof:$flavour}
BASE_IMAGE=${BASE_IMAGE:-localhost/debian-python:bookworm-minbase}
BASE_ARG=${BASE_ARG:-$default_arg}
ENGINE=${ENGINE:-podman}
RUNTIME=${RUNTIME:-runc}
CA_BUNDLE=${CA_BUNDLE-/etc/ssl/certs/ca-certificates.crt}
TORCH_INDEX=${TORCH_INDEX-$default_index}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
CA_IN_BUILD=/run/build-ca.crt

log() { printf '[build-image %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

[[ -f $DOCKERFILE ]] || { log "no Dockerfile at $DOCKERFILE"; exit 2; }
grep -q "^ARG $BASE_ARG=" "$DOCKERFILE" || { log "$DOCKERFILE has no ARG $BASE_ARG (set BASE_ARG)"; exit 2; }

make_base() {
  if "$ENGINE" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    log "base image $BASE_IMAGE exists"
    return
  fi
  command -v debootstrap >/dev/null || { log "debootstrap is not installed (apt-get install debootstrap)"; exit 2; }
  local root
  root=$(mktemp -d "${TMPDIR:-/var/tmp}/hardspoof-rootfs.XXXXXX")
  # shellcheck disable=SC2064   # expand $root now: it is local to this function
  trap "rm -rf '$root'" RETURN
  log "debootstrap bookworm (minbase + python3) into $root"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" "$MIRROR" >&2
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
  tar -C "$root" -c . | "$ENGINE" import --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
  log "imported $BASE_IMAGE"
}

torch_index() {
  [[ -n $TORCH_INDEX ]] || { log "torch from the package index (TORCH_INDEX is empty)"; return 0; }
  if python3 - "$TORCH_INDEX" <<'PY' 2>/dev/null; then
import sys, urllib.request
urllib.request.urlopen(sys.argv[1].rstrip("/") + "/torch/", timeout=20).read(1)
PY
    log "torch from $TORCH_INDEX"
    printf '%s' "$TORCH_INDEX"
  else
    log "$TORCH_INDEX does not answer: torch comes from the package index (the CUDA build; a larger image)"
  fi
}

make_base
ignorefile=$DOCKERFILE.dockerignore
args=(build -f "$DOCKERFILE" -t "$IMAGE" --build-arg "$BASE_ARG=$BASE_IMAGE"
      --build-arg "TORCH_INDEX=$(torch_index)")
if [[ $ENGINE == podman ]]; then
  args=(--runtime "$RUNTIME" "${args[@]}" --ulimit nofile=20000:20000 --ulimit nproc=32768:32768)
  [[ ! -f $ignorefile ]] || args+=(--ignorefile "$ignorefile")
  if [[ -n $CA_BUNDLE ]]; then
    args+=(--volume "$CA_BUNDLE:$CA_IN_BUILD:ro" --build-arg "CA_BUNDLE=$CA_IN_BUILD")
  fi
fi
[[ -z ${MODELS+set} ]] || args+=(--build-arg "MODELS=$MODELS")
[[ -z ${FRONTENDS+set} ]] || args+=(--build-arg "FRONTENDS=$FRONTENDS")
log "$ENGINE ${args[*]} $ROOT"
start=$SECONDS
"$ENGINE" "${args[@]}" "$ROOT"
log "built $IMAGE in $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s"
size_mb() { echo $(( $("$ENGINE" image inspect --format '{{.Size}}' "$1") / 1000000 )); }
log "image sizes: $BASE_IMAGE $(size_mb "$BASE_IMAGE") MB, $IMAGE $(size_mb "$IMAGE") MB"
