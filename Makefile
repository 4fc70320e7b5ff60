# Two entry points: `make demo` (the newsroom on this machine) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint stress bench browser-deps clean search-layer

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# `make demo PORT=8001` serves the site on another port (default 8000)
demo: $(STAMP)
	$(BIN)/newsroom demo $(if $(PORT),--port $(PORT))

# three workers (pytest-xdist) on two cores, so a test waiting on a process, a
# server or a queue leaves its core to another; one test file each at a time,
# so a file's module fixtures (a built site, a running demo) are made once; the
# browser folder is one unit and the longest files go first (tests/conftest.py).
# Then the outside judges alone: Lighthouse scores the pages, not other tests' CPU.
test: $(STAMP) browser-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n 3 --dist loadfile --ignore=tests/test_judges.py
	$(BIN)/python -m pytest -q tests/test_judges.py

stress: $(STAMP)
	$(BIN)/python -m pytest -q -m stress -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Browser tests and the outside judges (tests/test_judges.py) use Debian's
# Chromium and Java, and from the npm registry axe-core, the W3C Nu HTML
# Checker (vnu-jar) and Lighthouse, installed into ./node_modules in one go.
NPM_JUDGES := axe-core@4 vnu-jar lighthouse@12.2.3
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium (Debian packages) for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }
	@command -v java >/dev/null 2>&1 || { \
	  echo "installing Java (Debian package) for the Nu HTML Checker"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null; }
	@test -f node_modules/axe-core/axe.min.js -a -f node_modules/vnu-jar/build/dist/vnu.jar \
	  -a -f node_modules/lighthouse/package.json \
	  || npm install --no-save --no-audit --no-fund --silent $(NPM_JUDGES)

# The Pagefind binary for update_search, as a Lambda layer (docs/deploy.md):
# the pagefind-bin wheel for Lambda's platform, repacked under python/.
PAGEFIND_VERSION := 1.5.2
LAMBDA_PLATFORM  ?= manylinux2014_x86_64
search-layer: $(STAMP)
	rm -rf build/search-layer-wheels
	$(BIN)/pip download --quiet --no-deps --only-binary=:all: --platform $(LAMBDA_PLATFORM) \
	  --python-version 3.11 --implementation cp --dest build/search-layer-wheels \
	  'pagefind-bin==$(PAGEFIND_VERSION)'
	$(BIN)/python -m newsroom.layer build/search-layer-wheels build/search-layer.zip

clean:
	rm -rf $(VENV) node_modules _site .pytest_cache .ruff_cache build
