# The two commands a newcomer needs (see README.md):
#   make serve   build everything and start the gateway with the bundled plugins and default config
#   make test    build everything and run every test (what CI runs)
# Each target installs what it needs (wasm target, Python test packages) and is safe to re-run.

CARGO       ?= cargo
PYTHON      ?= python3
VENV        := .venv
WASM_TARGET := wasm32-wasip2
WASM_OUT    := target/$(WASM_TARGET)/wasm
# Bundled plugins: crate name -> plugins/dist/<name>.wasm
BUNDLED     := openai-compatible anthropic gemini pii priority-fallback weighted least-busy lowest-latency most-capacity cheapest classify middle-out summarize cascade
# Plugins that exist only to test the host (hostile, scripted); never loaded by default.
TESTING     := hostile hostile-router test-guard greedy

.PHONY: serve test build plugins test-plugins polyglot-plugins plugin-toolchains wasm-target venv node-sdk bench bench-plugins bench-reload lint

serve: build plugins
	./target/release/freeway serve --config config/gateway.toml

build:
	$(CARGO) build --release -p freeway

wasm-target:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)

plugins: wasm-target
	$(CARGO) build --profile wasm --target $(WASM_TARGET) $(addprefix -p freeway-,$(BUNDLED))
	@mkdir -p plugins/dist
	@for p in $(BUNDLED); do cp $(WASM_OUT)/freeway_$$(echo $$p | tr - _).wasm plugins/dist/$$p.wasm; done

test-plugins: wasm-target polyglot-plugins
	$(CARGO) build --profile wasm --target $(WASM_TARGET) $(addprefix -p freeway-,$(TESTING))
	@mkdir -p target/test-plugins
	@for p in $(TESTING); do cp $(WASM_OUT)/freeway_$$(echo $$p | tr - _).wasm target/test-plugins/$$p.wasm; done
	$(CARGO) build --profile wasm --target $(WASM_TARGET) -p freeway-flip-router
	cp $(WASM_OUT)/freeway_flip_router.wasm target/test-plugins/flip-router-v1.wasm
	$(CARGO) build --profile wasm --target $(WASM_TARGET) -p freeway-flip-router --features reverse
	cp $(WASM_OUT)/freeway_flip_router.wasm target/test-plugins/flip-router-v2.wasm

# Plugins in other languages, built from source with their own pinned toolchains (PyPI, npm).
# Rebuilt only when their sources change.
POLYGLOT := target/test-plugins/keyword-guard.wasm target/test-plugins/tag-router.wasm
polyglot-plugins: $(POLYGLOT)
target/test-plugins/keyword-guard.wasm: $(wildcard plugins/python/keyword-guard/*.py plugins/python/keyword-guard/*.sh plugins/python/keyword-guard/*.txt) wit/freeway.wit
	@mkdir -p target/test-plugins
	plugins/python/keyword-guard/build.sh $@
target/test-plugins/tag-router.wasm: $(wildcard plugins/js/tag-router/src/*.js plugins/js/tag-router/*.json plugins/js/tag-router/*.sh) wit/freeway.wit
	@mkdir -p target/test-plugins
	plugins/js/tag-router/build.sh $@

# What `freeway plugin new --lang c` projects build with, besides Debian's clang, lld and
# wasi-libc (installed by .ci/run): wit-bindgen's C generator and wasm-tools' `component new`,
# pinned to the wit-bindgen the workspace uses and the wasm-tools release of the same
# wit-component. Installed once into ~/.cargo/bin (about two minutes), then reused.
WIT_BINDGEN_VERSION := 0.61.1
WASM_TOOLS_VERSION  := 1.258.0
plugin-toolchains:
	@wit-bindgen --version 2>/dev/null | grep -q "^wit-bindgen-cli $(WIT_BINDGEN_VERSION)" || \
		$(CARGO) install --locked --quiet wit-bindgen-cli@$(WIT_BINDGEN_VERSION) --no-default-features --features c
	@wasm-tools --version 2>/dev/null | grep -q "^wasm-tools $(WASM_TOOLS_VERSION)" || \
		$(CARGO) install --locked --quiet wasm-tools@$(WASM_TOOLS_VERSION) --no-default-features --features component

venv: $(VENV)/.installed
$(VENV)/.installed: tests/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	@touch $@

# The official openai Node SDK for tests/e2e/test_node_sdk.py, pinned by tests/node's lock file.
node-sdk: tests/node/node_modules/.installed
tests/node/node_modules/.installed: tests/node/package.json tests/node/package-lock.json
	cd tests/node && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

test: build plugins test-plugins plugin-toolchains venv node-sdk
	$(CARGO) test --release --workspace
	plugins/python/keyword-guard/test.sh
	node --test plugins/js/tag-router/src/
	$(VENV)/bin/python -m pytest tests/e2e -q

bench: build plugins venv
	$(VENV)/bin/python tests/bench/bench.py

bench-reload: build plugins test-plugins venv
	$(VENV)/bin/python tests/bench/reload_bench.py

bench-plugins: build plugins test-plugins
	./target/release/freeway-plugin-bench plugins/dist target/test-plugins

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings
