#!/usr/bin/env bash
# Builds the two frozen one-folder apps: DIST/kiosk (the proctor box) and DIST/stu-client
# (the exam PC). DIST defaults to dist/, PyInstaller's work folder to build/work/.
#   bash build/build.sh              # always rebuild
#   bash build/build.sh --if-stale   # keep DIST when it was built from these very sources
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DIST=$(realpath -m "${DIST:-dist}")
WORK=$(realpath -m "${WORK:-build/work}")
PYI=${PYINSTALLER:-$ROOT/.venv/bin/pyinstaller}
mkdir -p "$DIST" "$WORK"

# One build at a time per work folder (PyInstaller's caches are not shared safely).
exec 9>"$WORK/.lock"
flock 9

# What a build is made of: the specs, the project's metadata, every source and data file.
stamp=$( { sha256sum build/build.sh build/*.spec build/*.py pyproject.toml
           find kiosk stu_client -type f \( -name '*.py' -o -name '*.kv' -o -name '*.j2' \
             -o -name '*.html' -o -name '*.sql' \) -not -path '*/__pycache__/*' -print0 \
             | sort -z | xargs -0 sha256sum; } | sha256sum | cut -c1-32)
if [ "${1:-}" = "--if-stale" ] && [ -f "$DIST/.build-stamp" ] \
   && [ "$(cat "$DIST/.build-stamp")" = "$stamp" ] \
   && [ -x "$DIST/kiosk/kiosk" ] && [ -x "$DIST/stu-client/stu-client" ]; then
  echo "build: $DIST is up to date"
  exit 0
fi
rm -f "$DIST/.build-stamp"

# Kivy is imported while the specs are read: no argument parsing, no window, its
# settings in the work folder rather than the builder's home.
export KIVY_NO_ARGS=1 KIVY_LOG_MODE=PYTHON KIVY_NO_CONSOLELOG=1 KIVY_WINDOW=none
export KIVY_HOME="$WORK/kivy-home"
start=$(date +%s)
for spec in kiosk stu-client; do
  # Kivy's provider probes fill the log with expected tracebacks: it is shown on failure.
  if ! "$PYI" --noconfirm --log-level WARN --distpath "$DIST" --workpath "$WORK/$spec" \
       "build/$spec.spec" > "$WORK/$spec.log" 2>&1; then
    tail -n 60 "$WORK/$spec.log" >&2
    echo "build: $spec failed (whole log: $WORK/$spec.log)" >&2
    exit 1
  fi
done
echo "$stamp" > "$DIST/.build-stamp"
echo "build: $DIST/kiosk $(du -sh "$DIST/kiosk" | cut -f1), $DIST/stu-client" \
     "$(du -sh "$DIST/stu-client" | cut -f1) in $(( $(date +%s) - start )) s"
