#!/bin/sh
# Build a local stand-in for the official node:20 image, for machines that cannot pull from
# a registry (see ../shared/DOCKER.md). FROM scratch plus, from this machine:
#   - the node binary and every shared library ldd lists for it (and the dynamic loader),
#   - a static busybox with its applets linked (sh, env, adduser, ...), so RUN steps work,
#   - npm (/usr/lib/node_modules/npm, linked as /usr/bin/npm and /usr/bin/npx),
#   - the machine's npm config and CA bundle, so `npm ci` in a `docker build --network host`
#     reaches the registry the same way the host does,
#   - a `node` user and group (uid/gid 1000, home /home/node) like the official images have.
# The result stays on this machine: it carries the host's npmrc, never push it anywhere.
#
# Usage: scripts/docker-base-image.sh [--force] [TAG]   (default TAG ring-balancer/node-standin:20)
# Skips the build when TAG already exists, unless --force (or FORCE=1).
set -eu

force=${FORCE:-0}
tag=""
for arg in "$@"; do
  case "$arg" in
    --force|-f) force=1 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) tag=$arg ;;
  esac
done
tag=${tag:-ring-balancer/node-standin:20}

log() { echo "docker-base-image: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

docker info >/dev/null 2>&1 || die "the Docker engine does not answer; run scripts/docker-up.sh first"

if [ "$force" != 1 ] && docker image inspect "$tag" >/dev/null 2>&1; then
  log "$tag exists (use --force to rebuild)"
  exit 0
fi

node_bin=$(readlink -f "$(command -v node)") || die "node not found on PATH"
busybox=""
for b in /bin/busybox /usr/bin/busybox; do
  if [ -x "$b" ] && ! ldd "$b" >/dev/null 2>&1; then busybox=$b; break; fi
done
[ -n "$busybox" ] || die "no static busybox found; apt-get install busybox-static (scripts/docker-up.sh does)"
npm_dir=""
for d in "$(dirname "$(dirname "$node_bin")")/lib/node_modules/npm" /usr/lib/node_modules/npm /usr/local/lib/node_modules/npm; do
  if [ -f "$d/bin/npm-cli.js" ]; then npm_dir=$d; break; fi
done
[ -n "$npm_dir" ] || die "npm not found next to $node_bin"
ca=/etc/ssl/certs/ca-certificates.crt
[ -f "$ca" ] || die "no CA bundle at $ca"

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT INT TERM
root=$ctx/rootfs
mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/usr/lib/node_modules" \
  "$root/usr/etc" "$root/etc/ssl/certs" "$root/tmp" "$root/root" "$root/home/node"
chmod 1777 "$root/tmp"

# copy FILE into the image at the same path, following symlinks
put() { mkdir -p "$root$(dirname "$1")" && cp -L "$1" "$root$1"; }

cp "$node_bin" "$root/usr/bin/node"
# Every absolute path ldd prints: "libx.so => /path (0x..)" and "/lib64/ld-linux-x86-64.so.2 (0x..)".
for lib in $(ldd "$node_bin" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' | sort -u); do
  put "$lib"
done
cp "$busybox" "$root/bin/busybox"
cp -a "$npm_dir" "$root/usr/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/bin/npx"
for rc in /usr/etc/npmrc /etc/npmrc; do
  if [ -f "$rc" ]; then put "$rc"; fi
done
put "$ca"

cat >"$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
node:x:1000:1000::/home/node:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat >"$root/etc/group" <<'GROUP'
root:x:0:
node:x:1000:
nogroup:x:65534:
GROUP
echo 'hosts: files dns' >"$root/etc/nsswitch.conf"

node_version=$("$node_bin" --version)
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM scratch
COPY rootfs/ /
# Link the busybox applets (sh, env, adduser, ...) into /bin, /sbin, /usr/bin, /usr/sbin.
RUN ["/bin/busybox", "--install", "-s"]
RUN chown -R 1000:1000 /home/node
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    NODE_VERSION=${node_version#v}
LABEL org.opencontainers.image.title="ring-balancer local node stand-in" \\
      org.opencontainers.image.description="node ${node_version} copied from the build machine; local use only"
CMD ["node"]
DOCKERFILE

log "building $tag from node $node_version ($node_bin), npm $(cd "$npm_dir" && "$node_bin" -p 'require("./package.json").version'), busybox $busybox"
docker build --network host -t "$tag" "$ctx"
log "built $tag"
