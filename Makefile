# tvapp: `make run` starts the product, `make test` runs the whole suite. Both bootstrap .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test bench venv system-deps js-deps clean help

help:
	@echo "make run    - create .venv, install, start the demo: built-in core + TV + talking bots"
	@echo "make test   - create .venv, install system packages (as root), run the whole suite"
	@echo "make bench  - run the benchmarks (figures go in bench/README.md)"

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "tvapp needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $@

system-deps:
	@bash scripts/install-system-deps.sh

# The JavaScript tests' npm packages (tests/js/package.json: the TypeScript compiler that checks the SDK's
# tvapp.d.ts) in tests/js/node_modules, exactly as package-lock.json pins them; again only when the lock changes.
JS_STAMP := tests/js/node_modules/.installed
js-deps: $(JS_STAMP)

$(JS_STAMP): tests/js/package.json tests/js/package-lock.json | system-deps
	@if command -v npm >/dev/null 2>&1; then \
		cd tests/js && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else echo "js-deps: npm is missing (system-deps installs it as root); tests/js/types.test.js will fail"; fi

run: $(STAMP)
	@echo "Starting the tvapp demo: the built-in core on port 8800, the TV (fullscreen, or offscreen with"
	@echo "screenshots when there is no screen) and 4 bots taking turns to talk. Phones join with the code on"
	@echo "screen at the address printed below. Stop with Ctrl-C. Core alone: $(VENV)/bin/tvapp serve"
	$(VENV)/bin/tvapp demo

test: $(STAMP) system-deps $(JS_STAMP)
	$(PY) -m pytest -q --durations=25

bench: $(STAMP)
	$(PY) -m bench.join_latency
	$(PY) -m bench.rest_throughput
	$(PY) -m bench.speaker_switch
	$(PY) -m bench.sfu_fanout
	$(PY) -m bench.sfu_room
	$(PY) -m bench.recording
	$(PY) -m bench.glass_to_glass
	$(PY) -m bench.sfu_memory
	$(PY) -m bench.tv_compositor
	$(PY) -m bench.tv_pipeline
	$(PY) -m bench.tv_latency
	$(PY) -m bench.tv_remote
	$(PY) -m bench.watch_sync
	$(PY) -m bench.watch_cpu
	$(PY) -m bench.echo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .hypothesis tests/js/node_modules

# Every fuzzer at night length: the media path and signaling (tests/test_fuzz_media.py), the TV's pairing bodies
# and /v1/remote messages (tests/test_fuzz_tv_remote.py) and the core's REST bodies, paths and signaling texts
# (tests/test_api_properties.py). TVAPP_FUZZ_EXAMPLES is the example count of a test that runs 200 in the suite
# (`make test` runs the suite's short version; tvapp.testing.fuzz scales the others in proportion); the default
# 100000 is ~870,000 examples for the media fuzz alone, ~3 h here, and ~750,000 more, quick ones, for the TV
# and REST parsers. `make fuzz FUZZ_EXAMPLES=1000000` for a weekend.
FUZZ_EXAMPLES ?= 100000
FUZZ_TESTS := tests/test_fuzz_media.py tests/test_fuzz_tv_remote.py tests/test_api_properties.py

.PHONY: fuzz
fuzz: $(STAMP)
	TVAPP_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q -p no:cacheprovider --timeout=0 \
		--hypothesis-show-statistics $(FUZZ_TESTS)
