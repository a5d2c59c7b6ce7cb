#!/bin/sh
# Build {{name}}.wasm (a Freeway {{kind}} plugin) with componentize-py.
#
# Installs the pinned componentize-py (requirements.txt) into ./.venv on first use (or uses the
# venv named by FREEWAY_PY_VENV); after that the build needs no network. Needs python3 3.10+.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
venv=${FREEWAY_PY_VENV:-$here/.venv}
pinned=$(sed -n 's/^componentize-py==//p' requirements.txt)
if ! "$venv/bin/componentize-py" --version 2>/dev/null | grep -qx "componentize-py $pinned"; then
    echo "{{name}}: installing componentize-py $pinned into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements.txt
fi
# Bindings for the unit tests (plain Python; `make test` imports app.py natively).
rm -rf bindings
"$venv/bin/componentize-py" -d wit -w {{kind}} bindings bindings >/dev/null
"$venv/bin/componentize-py" -d wit -w {{kind}} componentize app -p . -o {{name}}.wasm.tmp >&2
mv {{name}}.wasm.tmp {{name}}.wasm
echo "{{name}}: wrote {{name}}.wasm" >&2
