#!/usr/bin/env bash
# check-image.sh: what can be checked of deploy/Dockerfile's image without a
# Docker daemon. It builds the binary with the Dockerfile's own command and
# runs it as the image would — user 65532 in a root that holds nothing but the
# binary, an empty /data owned by that user and /tmp (less than distroless
# static gives: no CA certificates, no tzdata, no /etc/passwd), with the
# image's environment — then checks that the node becomes ready, creates the
# database and its secret (mode 0600) in /data, starts a verification whose
# code goes out through the log gateway, and after a restart on the same
# /data still knows it. Needs root (chroot).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "check-image: needs root for chroot" >&2; exit 1; fi

chroot=$(command -v chroot) || { echo "check-image: no chroot" >&2; exit 1; }
root=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$root"; }
trap cleanup EXIT
chmod 755 "$root"
mkdir -p "$root/usr/local/bin" "$root/data" "$root/tmp"
chmod 1777 "$root/tmp"
chown 65532:65532 "$root/data"

# The build line of deploy/Dockerfile, read from it so the two cannot drift.
build=$(sed -n '/^RUN CGO_ENABLED=0/,/-o \/out\/phoneverify/p' deploy/Dockerfile | sed 's/^RUN //; s/\\$//' | tr -d '\n')
build=${build//'${VERSION}'/check}
build=${build//\/out\/phoneverify/$root/usr/local/bin/phoneverify}
[ -n "$build" ] || { echo "check-image: no build line found in deploy/Dockerfile" >&2; exit 1; }
eval "$build"
# No file in the root but the binary: a dynamically linked one could not even
# start there (no loader, no libc), so running it is the check that it is static.

port=$((20000 + RANDOM % 20000))
key=pvk_$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
base=http://127.0.0.1:$port
start_node() {
  # The image's ENV, with loopback instead of 0.0.0.0 so nothing outside sees it.
  env -i PHONEVERIFY_ADDR=127.0.0.1:$port PHONEVERIFY_DATABASE_URL=sqlite:/data/phoneverify.db PHONEVERIFY_API_KEY=$key \
    "$chroot" --userspec=65532:65532 "$root" /usr/local/bin/phoneverify serve >>"$root/node.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    curl -fsS "$base/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "check-image: the node did not become ready; its log:" >&2; cat "$root/node.log" >&2; exit 1
}
stop_node() { kill "$pid"; wait "$pid" || true; pid=; }

start_node
for f in phoneverify.db phoneverify.secret; do
  [ -f "$root/data/$f" ] || { echo "check-image: /data/$f was not created" >&2; exit 1; }
done
mode=$(stat -c '%a %u' "$root/data/phoneverify.secret")
[ "$mode" = "600 65532" ] || { echo "check-image: /data/phoneverify.secret is '$mode', want '600 65532'" >&2; exit 1; }
answer=$(curl -fsS -X POST "$base/v1/verifications" -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
  -d '{"to":"+9779812345678"}')
id=$(printf '%s' "$answer" | sed -n 's/.*"id":"\(VE[0-9a-f]*\)".*/\1/p')
[ -n "$id" ] || { echo "check-image: start answered $answer" >&2; exit 1; }
stop_node

start_node
got=$(curl -fsS "$base/v1/verifications/$id" -H "Authorization: Bearer $key")
# The verification's own status comes first; its messages' follow.
status=$(printf '%s' "$got" | grep -o '"status":"[a-z_]*"' | head -1 || true)
[ "$status" = '"status":"pending"' ] || { echo "check-image: after a restart the verification reads $got" >&2; exit 1; }
case $got in *'"status":"sent","gateway":"log"'*) ;; *) echo "check-image: the code was not handed to the log gateway: $got" >&2; exit 1 ;; esac
stop_node
echo "check-image: static binary ran as 65532 in an empty root: ready; /data got the database and a 0600 secret; a verification code went to the log gateway; the verification survived a restart"
