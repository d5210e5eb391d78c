# Everything a fresh machine with only Node/npm needs: `make run` and `make test` install the rest.
SHELL := /bin/bash
.DEFAULT_GOAL := build

BUN_VERSION := 1.4.5
# Bun from PATH, or a private copy from the npm registry when the machine has none.
BUN := $(or $(shell command -v bun 2>/dev/null),$(CURDIR)/.tools/node_modules/.bin/bun)
SOURCES := $(shell find src drizzle -type f 2>/dev/null) package.json bun.lock tsconfig.json
BUILD_FLAGS := --compile --minify \
	--no-compile-autoload-dotenv --no-compile-autoload-bunfig

.PHONY: build run test typecheck bench mutate clean migration release image

# `make release`: one binary per machine a self-hoster runs (README "Binaries"). Bun fetches each target's runtime
# from the npm registry (@oven/bun-linux-*) on first use and caches it.
RELEASE_TARGETS := linux-x64 linux-x64-baseline linux-arm64 linux-x64-musl linux-arm64-musl
RELEASE_BINARIES := $(RELEASE_TARGETS:%=dist/release/latchkey-%)

# wrk (the load generator of `make bench`) is on PATH, or root installs it from Debian's packages.
have_wrk = command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
# Debian packages the tests drive for real, installed by root in one apt-get run when any is missing: chromium (the
# browser tests, driven by playwright-core: Playwright never downloads a browser), nginx and caddy (the forward-auth
# proxy tests), openssl (the self-signed certificate of the suite's SMTP server, test/support/smtp.ts),
# qemu-user-static and libc6-arm64-cross (the arm64 release binary, test/e2e/release.test.ts), musl-tools (musl's
# loader and musl-gcc, for the x64 musl release binary, same test), systemd
# (systemd-analyze verifies examples/latchkey.service), python3-jwt and python3-cryptography (the README's PyJWT
# example run against the binary, test/e2e/readme-examples.test.ts), curl and jq (the README's quick start, run as
# written by test/e2e/first-run.test.ts), podman, runc and mmdebstrap (the image, test/e2e/image.test.ts), postgresql
# (a real server for test/e2e/postgres.test.ts, started by the test as an unprivileged user), prometheus (scrapes
# /metrics of the binary, test/e2e/metrics.test.ts). Without
# them those tests fail and say why.
# Each entry is package[:what shows it is installed], a command or a file; the package name itself by default.
TEST_PACKAGES := chromium:/usr/bin/chromium nginx caddy openssl qemu-user-static:qemu-aarch64-static \
	libc6-arm64-cross:/usr/aarch64-linux-gnu/lib/libc.so.6 systemd:systemd-analyze \
	python3-jwt:/usr/lib/python3/dist-packages/jwt/__init__.py python3-cryptography:/usr/lib/python3/dist-packages/cryptography/__init__.py \
	curl jq podman runc mmdebstrap musl-tools:musl-gcc postgresql:pg_ctlcluster prometheus \
	apache2 libapache2-mod-auth-openidc:/usr/lib/apache2/modules/mod_auth_openidc.so
TEST_PACKAGE_NAMES := $(foreach entry,$(TEST_PACKAGES),$(firstword $(subst :, ,$(entry))))
have_test_packages = missing=""; for entry in $(TEST_PACKAGES); do package=$${entry%%:*}; probe=$${entry\#*:}; \
	command -v $$probe >/dev/null || [ -x /usr/sbin/$$probe ] || [ -e $$probe ] || missing="$$missing $$package"; done; \
	[ -z "$$missing" ] || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; }

$(CURDIR)/.tools/node_modules/.bin/bun:
	npm install --no-save --no-audit --no-fund --prefix $(CURDIR)/.tools bun@$(BUN_VERSION)

node_modules/.installed: package.json bun.lock | $(BUN)
	$(BUN) install --frozen-lockfile
	@touch $@

dist/latchkey: $(SOURCES) node_modules/.installed
	$(BUN) build $(BUILD_FLAGS) src/main.ts --outfile dist/latchkey

build: dist/latchkey

# --define names the target in `latchkey --version` (src/version.ts).
dist/release/latchkey-%: $(SOURCES) node_modules/.installed
	$(BUN) build $(BUILD_FLAGS) --target=bun-$* --define 'LATCHKEY_BUILD_TARGET="bun-$*"' src/main.ts --outfile $@

dist/release/SHA256SUMS: $(RELEASE_BINARIES)
	cd dist/release && sha256sum $(notdir $(RELEASE_BINARIES)) > SHA256SUMS.tmp && mv SHA256SUMS.tmp SHA256SUMS

## Cross-compile the five release binaries into dist/release/, with SHA256SUMS.
release: dist/release/SHA256SUMS

# `make image`: Docker when installed, else Podman (with --format docker: OCI images drop HEALTHCHECK).
CONTAINER_ENGINE ?= $(or $(shell command -v docker 2>/dev/null),podman)
IMAGE ?= latchkey
IMAGE_BUILD_FLAGS ?=
VERSION := $(shell sed -n 's/^  "version": "\(.*\)",$$/\1/p' package.json)

## Build the Docker image from the Dockerfile (tags latchkey:VERSION and latchkey:latest).
image:
	$(CONTAINER_ENGINE) build $(if $(findstring podman,$(notdir $(CONTAINER_ENGINE))),--format docker) $(IMAGE_BUILD_FLAGS) \
		-t $(IMAGE):$(VERSION) -t $(IMAGE):latest .

## Build and start the server with its data in ./data (Ctrl-C stops it).
run: dist/latchkey
	DATA_DIR=$${DATA_DIR:-./data} ./dist/latchkey serve

## Types; xss-scan (@kitajs/ts-html-plugin): a page that inserts text from a variable without `safe` fails; knip
## (knip.json): an unused file, export, type or dependency fails.
typecheck: node_modules/.installed
	$(BUN) x tsc --noEmit -p .
	$(BUN) x xss-scan
	$(BUN) x knip

## The end-to-end suite runs a second time on PostgreSQL (test/support/engine.ts), all but the files about the
## binary's own files and packaging, which hold nothing engine-specific to test again: the first-run script, the
## image, the release binaries, the systemd unit, file ownership under PUID/PGID, `latchkey backup` (the SQLite
## file), and the README's examples.
E2E_ON_POSTGRES := $(filter-out $(addprefix test/e2e/,first-run.test.ts image.test.ts release.test.ts systemd.test.ts \
	privileges.test.ts backup-restore.test.ts readme-examples.test.ts),$(wildcard test/e2e/*.test.ts))

## Type-check, build the binary, install Debian's chromium, nginx and caddy for the browser and proxy tests when missing (as root), run every
## test (--timeout: e2e tests start servers and hash real argon2id passwords; bunfig has no such setting), then one
## 1-second round of the benchmark to show it still runs (it judges nothing; skipped without wrk), and last one
## plain "N passed, N failed" line.
test: typecheck dist/latchkey dist/release/SHA256SUMS
	@$(call have_test_packages) || echo "$(TEST_PACKAGE_NAMES) are not all installed and could not be installed (as root: apt-get install $(TEST_PACKAGE_NAMES)): the browser, proxy, mail and release tests will fail"
	@mkdir -p .test-results && rm -f .test-results/junit-postgres.xml
	@$(BUN) test --timeout 30000 --reporter=junit --reporter-outfile=.test-results/junit.xml; status=$$?; bench=""; \
	if command -v pg_ctlcluster >/dev/null; then \
	  echo "end-to-end suite again, on PostgreSQL (LATCHKEY_TEST_ENGINE=postgres)"; \
	  LATCHKEY_TEST_ENGINE=postgres $(BUN) test --timeout 30000 --reporter=junit --reporter-outfile=.test-results/junit-postgres.xml $(E2E_ON_POSTGRES) || status=1; \
	else \
	  echo "!!! PostgreSQL is not installed (Debian: apt-get install postgresql): the end-to-end suite did NOT run on PostgreSQL !!!"; \
	  if [ "$$CI" = true ]; then status=1; fi; \
	fi; \
	if [ $$status = 0 ]; then \
	  if $(call have_wrk); then \
	    BENCH_DURATION=1 BENCH_ROUNDS=1 BENCH_RESULTS=.test-results/bench.json $(BUN) bench/run.ts || { status=$$?; echo "bench check failed (exit $$status)"; }; \
	  else bench=--bench-skipped; echo "bench check skipped: wrk is not installed (Debian: apt-get install wrk)"; fi; \
	fi; \
	$(BUN) test/support/summary.ts .test-results/junit.xml .test-results/junit-postgres.xml $$bench; exit $$status

## Measure dist/latchkey against the ceiling (bench/README.md); BENCH_DURATION=2 BENCH_ROUNDS=1 for a quick look.
bench: dist/latchkey
	@$(call have_wrk) || { echo "make bench needs wrk: install it with your package manager (Debian: apt-get install wrk)"; exit 1; }
	$(BUN) bench/run.ts

## Mutation testing of the security modules (StrykerJS over `bun test`, test/mutation/README.md): prints the score of
## each module and in all, and fails under 85 %. Not part of `make test` (minutes of CPU). MUTATE_GROUPS="csrf redirect"
## runs only those groups (test/mutation/groups.mjs).
mutate: node_modules/.installed
	$(BUN) test/mutation/run.ts $(MUTATE_GROUPS)

## Regenerate drizzle/sqlite and drizzle/postgres after editing src/db/schema.ts and its twin src/db/schema-postgres.ts
## (NAME=short_description).
migration: node_modules/.installed
	$(BUN) x drizzle-kit generate --config drizzle.config.ts --name $${NAME:?set NAME=short_description}
	$(BUN) x drizzle-kit generate --config drizzle.postgres.config.ts --name $${NAME:?set NAME=short_description}

clean:
	rm -rf dist .test-results reports .stryker-tmp
