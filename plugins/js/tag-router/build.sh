#!/bin/sh
# Build tag-router into a WebAssembly component: ./build.sh OUT.wasm
#
# Installs the toolchain pinned by package.json and package-lock.json (componentize-qjs, the
# QuickJS backend of jco, with its prebuilt native binding) into ./node_modules on first use;
# after that the build needs no network. Needs node (18+) and npm.
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

cd "$here"
pinned=$(node -p 'require("./package.json").devDependencies["componentize-qjs"]')
installed=$(node -p 'try { require("./node_modules/componentize-qjs/package.json").version } catch { "" }')
if [ "$installed" != "$pinned" ]; then
    echo "tag-router: installing componentize-qjs $pinned into $here/node_modules" >&2
    # `npm install`, not `npm ci`: componentize-qjs 0.4.5 lists native bindings that were never
    # published (linux-arm64-musl, win32-*), so they cannot be in the lock file and `npm ci`
    # refuses it as out of sync. With the lock present, `npm install` installs exactly the
    # locked versions, checks their integrity hashes and leaves the lock file unchanged.
    npm install --no-audit --no-fund --loglevel=error >&2
fi

# --sync: the default runtime uses the component-model async ABI, which the gateway's engine
# does not enable; the sync runtime gives plain exports.
# Write next to the destination and rename, so a plugin folder being watched by the gateway
# never sees a half-written file.
node_modules/.bin/componentize-qjs --wit "$wit" --world router --js src/tag-router.js \
    --sync --output "$out.tmp" >&2
mv "$out.tmp" "$out"
echo "tag-router: wrote $out" >&2
