#!/bin/sh
# Run keyword-guard's unit tests natively (CPython 3.11+) against componentize-py's generated
# bindings. Run ./build.sh once first to install the toolchain.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
rm -rf bindings
.venv/bin/componentize-py -d ../../../wit -w filter bindings bindings >/dev/null
.venv/bin/python -m unittest -v test_app
