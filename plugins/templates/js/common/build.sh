#!/bin/sh
# Build {{name}}.wasm (a Freeway {{kind}} plugin) with componentize-qjs, the QuickJS backend of
# jco. Installs the toolchain pinned by package.json and package-lock.json into ./node_modules
# on first use; after that the build needs no network. Needs node 18+ and npm.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
pinned=$(node -p 'require("./package.json").devDependencies["componentize-qjs"]')
installed=$(node -p 'try { require("./node_modules/componentize-qjs/package.json").version } catch { "" }')
if [ "$installed" != "$pinned" ]; then
    echo "{{name}}: installing componentize-qjs $pinned into node_modules" >&2
    # `npm install` with the lock file present installs exactly the locked versions (`npm ci`
    # refuses this lock: componentize-qjs lists native bindings that were never published).
    npm install --no-audit --no-fund --loglevel=error >&2
fi
# --sync: the gateway's engine does not enable the component-model async ABI.
node_modules/.bin/componentize-qjs --wit wit --world {{kind}} --js src/main.js --sync \
    --output {{name}}.wasm.tmp >&2
mv {{name}}.wasm.tmp {{name}}.wasm
echo "{{name}}: wrote {{name}}.wasm" >&2
