#!/bin/sh
# Build keyword-guard into a WebAssembly component: ./build.sh OUT.wasm
#
# Installs the pinned componentize-py (requirements.txt) into ./.venv on first use; after that
# the build needs no network. Needs python3 (3.10+) with the venv module.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 OUT.wasm" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
wit="$here/../../../wit"
# OUT is relative to the caller's directory; make it absolute before changing directory.
case "$1" in
    /*) out="$1" ;;
    *) out="$(pwd)/$1" ;;
esac
mkdir -p "$(dirname "$out")"

venv="$here/.venv"
pinned=$(sed -n 's/^componentize-py==//p' "$here/requirements.txt")
if ! "$venv/bin/componentize-py" --version 2>/dev/null | grep -qx "componentize-py $pinned"; then
    echo "keyword-guard: installing componentize-py $pinned into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
fi

cd "$here"
# Write next to the destination and rename, so a plugin folder being watched by the gateway
# never sees a half-written file.
"$venv/bin/componentize-py" -d "$wit" -w filter componentize app -p "$here" -o "$out.tmp" >&2
mv "$out.tmp" "$out"
echo "keyword-guard: wrote $out" >&2
