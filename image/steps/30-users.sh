#!/usr/bin/env bash
# No default credentials: root's password locked, and the one account the app runs as,
# `proctor`, has no password and no login shell. Its home is on the data partition.
set -euo pipefail
source "$IMAGE/lib.sh"
in_root usermod -p '*' root
if ! in_root id -u proctor >/dev/null 2>&1; then
  in_root useradd --system --user-group --home-dir /data/room --no-create-home \
    --shell /usr/sbin/nologin proctor
fi
in_root usermod -p '!' -a -G video,render,input,plugdev proctor 2>/dev/null \
  || in_root usermod -p '!' -a -G video,input proctor
