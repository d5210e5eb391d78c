# Everything a fresh machine with only Node/npm needs: `make run` and `make test` install the rest.
SHELL := /bin/bash
.DEFAULT_GOAL := build

BUN_VERSION := 1.4.5
# Bun from PATH, or a private copy from the npm registry when the machine has none.
BUN := $(or $(shell command -v bun 2>/dev/null),$(CURDIR)/.tools/node_modules/.bin/bun)
SOURCES := $(shell find src drizzle -type f 2>/dev/null) package.json bun.lock tsconfig.json
BUILD_FLAGS := --compile --minify \
	--no-compile-autoload-dotenv --no-compile-autoload-bunfig

.PHONY: build run test typecheck bench clean migration

# wrk (the load generator of `make bench`) is on PATH, or root installs it from Debian's packages.
have_wrk = command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
# Chromium (the browser of test/e2e/browser.test.ts, driven by playwright-core) is Debian's package, installed by
# root when missing: Playwright never downloads a browser. Without it the browser tests fail and say why.
have_chromium = command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# openssl makes the self-signed certificate of the suite's SMTP server (test/support/smtp.ts); root installs it.
have_openssl = command -v openssl >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null; }

$(CURDIR)/.tools/node_modules/.bin/bun:
	npm install --no-save --no-audit --no-fund --prefix $(CURDIR)/.tools bun@$(BUN_VERSION)

node_modules/.installed: package.json bun.lock | $(BUN)
	$(BUN) install --frozen-lockfile
	@touch $@

dist/latchkey: $(SOURCES) node_modules/.installed
	$(BUN) build $(BUILD_FLAGS) src/main.ts --outfile dist/latchkey

build: dist/latchkey

## Build and start the server with its data in ./data (Ctrl-C stops it).
run: dist/latchkey
	DATA_DIR=$${DATA_DIR:-./data} ./dist/latchkey serve

typecheck: node_modules/.installed
	$(BUN) x tsc --noEmit -p .

## Type-check, build the binary, install Debian's chromium for the browser tests when missing (as root), run every
## test (--timeout: e2e tests start servers and hash real argon2id passwords; bunfig has no such setting), then one
## 1-second round of the benchmark to show it still runs (it judges nothing; skipped without wrk), and last one
## plain "N passed, N failed" line.
test: typecheck dist/latchkey
	@$(call have_chromium) || echo "chromium is not installed and could not be installed (as root: apt-get install chromium): the browser tests will fail"
	@$(call have_openssl) || echo "openssl is not installed and could not be installed (as root: apt-get install openssl): the mail tests will fail"
	@mkdir -p .test-results
	@$(BUN) test --timeout 30000 --reporter=junit --reporter-outfile=.test-results/junit.xml; status=$$?; \
	if [ $$status = 0 ]; then \
	  if $(call have_wrk); then \
	    BENCH_DURATION=1 BENCH_ROUNDS=1 BENCH_RESULTS=.test-results/bench.json $(BUN) bench/run.ts || { status=$$?; echo "bench check failed (exit $$status)"; }; \
	  else echo "bench check skipped: wrk is not installed (Debian: apt-get install wrk)"; fi; \
	fi; \
	$(BUN) test/support/summary.ts .test-results/junit.xml; exit $$status

## Measure dist/latchkey against the ceiling (bench/README.md); BENCH_DURATION=2 BENCH_ROUNDS=1 for a quick look.
bench: dist/latchkey
	@$(call have_wrk) || { echo "make bench needs wrk: install it with your package manager (Debian: apt-get install wrk)"; exit 1; }
	$(BUN) bench/run.ts

## Regenerate drizzle/ after editing src/db/schema.ts (NAME=short_description).
migration: node_modules/.installed
	$(BUN) x drizzle-kit generate --name $${NAME:?set NAME=short_description}

clean:
	rm -rf dist .test-results
