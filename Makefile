# Everything a fresh machine with only Node/npm needs: `make run` and `make test` install the rest.
SHELL := /bin/bash
.DEFAULT_GOAL := build

BUN_VERSION := 1.4.5
# Bun from PATH, or a private copy from the npm registry when the machine has none.
BUN := $(or $(shell command -v bun 2>/dev/null),$(CURDIR)/.tools/node_modules/.bin/bun)
SOURCES := $(shell find src drizzle -type f 2>/dev/null) package.json bun.lock tsconfig.json
# The commit the binary names in `latchkey --version` and /health (src/version.ts); "unknown" outside a git checkout.
COMMIT := $(or $(shell git rev-parse --short HEAD 2>/dev/null),unknown)
BUILD_FLAGS := --compile --minify \
	--no-compile-autoload-dotenv --no-compile-autoload-bunfig --define 'LATCHKEY_COMMIT="$(COMMIT)"'

.PHONY: build run test typecheck bench mutate clean migration release image image-manifest

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
# /metrics of the binary, test/e2e/metrics.test.ts), apache2 and libapache2-mod-auth-openidc (a real relying party,
# test/e2e/oidc-apache.test.ts), binutils (strip, for the README's warning to packagers, test/e2e/release.test.ts).
# Without them those tests fail and say why.
# Each entry is package[:what shows it is installed], a command or a file; the package name itself by default.
TEST_PACKAGES := chromium:/usr/bin/chromium nginx caddy openssl qemu-user-static:qemu-aarch64-static \
	libc6-arm64-cross:/usr/aarch64-linux-gnu/lib/libc.so.6 systemd:systemd-analyze \
	python3-jwt:/usr/lib/python3/dist-packages/jwt/__init__.py python3-cryptography:/usr/lib/python3/dist-packages/cryptography/__init__.py \
	curl jq podman runc mmdebstrap musl-tools:musl-gcc postgresql:pg_ctlcluster prometheus binutils:strip \
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

# .git's HEAD and the branch it names: a new commit rebuilds, so the binary names the commit it was built from.
GIT_HEAD := $(shell git rev-parse --git-path HEAD 2>/dev/null) $(shell ref=$$(git symbolic-ref -q HEAD) && git rev-parse --git-path $$ref 2>/dev/null)
dist/latchkey: $(SOURCES) node_modules/.installed $(wildcard $(GIT_HEAD))
	$(BUN) build $(BUILD_FLAGS) src/main.ts --outfile dist/latchkey

build: dist/latchkey

# --define names the target in `latchkey --version` (src/version.ts).
dist/release/latchkey-%: $(SOURCES) node_modules/.installed
	$(BUN) build $(BUILD_FLAGS) --target=bun-$* --define 'LATCHKEY_BUILD_TARGET="bun-$*"' src/main.ts --outfile $@

# Every file of the release (binaries, archives, SBOM: their rules are below, after VERSION) is a prerequisite.
dist/release/SHA256SUMS: $(RELEASE_BINARIES)
	cd dist/release && sha256sum $(notdir $^) > SHA256SUMS.tmp && mv SHA256SUMS.tmp SHA256SUMS

## Cross-compile the five release binaries into dist/release/, pack each in an archive with LICENSE, README.md,
## CHANGELOG.md and examples/ (the systemd units), write the SBOM and SHA256SUMS.
release: dist/release/SHA256SUMS

# `make image`: Docker when installed, else Podman (with --format docker: OCI images drop HEALTHCHECK).
CONTAINER_ENGINE ?= $(or $(shell command -v docker 2>/dev/null),podman)
IMAGE ?= latchkey
IMAGE_BUILD_FLAGS ?=
VERSION := $(shell sed -n 's/^  "version": "\(.*\)",$$/\1/p' package.json)

# The release archives, latchkey-VERSION-linux-ARCH.tar.gz: one folder of that name holding the binary as `latchkey`
# and RELEASE_FILES. Reproducible: sorted names, owner root, every date the last commit's, gzip without a name.
RELEASE_FILES := LICENSE README.md CHANGELOG.md $(sort $(shell find examples -type f))
RELEASE_ARCHIVES := $(RELEASE_TARGETS:%=dist/release/latchkey-$(VERSION)-%.tar.gz)
SOURCE_DATE_EPOCH ?= $(or $(shell git log -1 --format=%ct 2>/dev/null),0)
dist/release/latchkey-$(VERSION)-%.tar.gz: dist/release/latchkey-% $(RELEASE_FILES)
	rm -rf dist/stage/$* && mkdir -p dist/stage/$*/latchkey-$(VERSION)-$*
	cp dist/release/latchkey-$* dist/stage/$*/latchkey-$(VERSION)-$*/latchkey
	cp --parents $(RELEASE_FILES) dist/stage/$*/latchkey-$(VERSION)-$*/
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@$(SOURCE_DATE_EPOCH) -C dist/stage/$* -cf - latchkey-$(VERSION)-$* \
		| gzip -n > $@.tmp && mv $@.tmp $@
	rm -rf dist/stage/$*

# The SBOM (CycloneDX JSON) of the npm packages the binaries bundle: @cyclonedx/cyclonedx-npm (a devDependency, run
# by Node; it reads `npm ls`) over a production-only install of the lockfile, so no build tool is listed.
RELEASE_SBOM := dist/release/latchkey-$(VERSION).cdx.json
$(RELEASE_SBOM): package.json bun.lock $(wildcard patches/*) node_modules/.installed
	rm -rf dist/sbom && mkdir -p dist/sbom && cp -r package.json bun.lock patches dist/sbom/
	cd dist/sbom && $(BUN) install --production --frozen-lockfile --ignore-scripts >/dev/null
	cd dist/sbom && node $(CURDIR)/node_modules/@cyclonedx/cyclonedx-npm/bin/cyclonedx-npm-cli.js --omit dev \
		--output-reproducible --validate --output-format JSON --output-file $(CURDIR)/$@.tmp
	mv $@.tmp $@ && rm -rf dist/sbom

dist/release/SHA256SUMS: $(RELEASE_ARCHIVES) $(RELEASE_SBOM)

# PLATFORM's architecture as Docker names it (amd64, arm64).
IMAGE_ARCH = $(lastword $(subst /, ,$(PLATFORM)))
## Build the Docker image from the Dockerfile (tags latchkey:VERSION and latchkey:latest). PLATFORM=linux/arm64 (or
## linux/amd64): that platform's image, assembled from its cross-compiled release binary without emulation (tags
## latchkey:VERSION-arm64).
image: $(if $(PLATFORM),dist/image/$(IMAGE_ARCH)/latchkey)
	$(CONTAINER_ENGINE) build $(if $(findstring podman,$(notdir $(CONTAINER_ENGINE))),--format docker) $(IMAGE_LABELS) \
		$(if $(PLATFORM),--platform $(PLATFORM) --build-arg BINARY=prebuilt,--build-arg BINARY=source) $(IMAGE_BUILD_FLAGS) \
		$(if $(PLATFORM),-t $(IMAGE):$(VERSION)-$(IMAGE_ARCH),-t $(IMAGE):$(VERSION) -t $(IMAGE):latest) .

# The OCI labels (Dockerfile): the version, the commit, and where its source is (the git remote without any
# credentials in its URL; IMAGE_SOURCE=https://... overrides it).
IMAGE_REVISION ?= $(or $(shell git rev-parse HEAD 2>/dev/null),unknown)
IMAGE_SOURCE ?= $(or $(shell git remote get-url origin 2>/dev/null | sed -E 's#^([a-z+]+://)[^@/]*@#\1#'),unknown)
IMAGE_LABELS = --build-arg VERSION=$(VERSION) --build-arg REVISION=$(IMAGE_REVISION) --build-arg SOURCE=$(IMAGE_SOURCE) --build-arg COMMIT=$(COMMIT)

# PLATFORM's release binary (Bun names amd64 x64) with an empty data folder, in dist/image/ where the Dockerfile's
# "prebuilt" stage copies them from.
dist/image/amd64/latchkey: dist/release/latchkey-linux-x64
dist/image/arm64/latchkey: dist/release/latchkey-linux-arm64
dist/image/amd64/latchkey dist/image/arm64/latchkey:
	rm -rf $(@D) && mkdir -p $(@D)/data && cp $^ $@

## Both platforms' images (as `make image PLATFORM=...`) and the manifest list naming them, latchkey:VERSION-multiarch
## (Podman: `podman manifest push latchkey:VERSION-multiarch docker://registry/latchkey:VERSION` publishes both).
IMAGE_PLATFORMS := linux/amd64 linux/arm64
comma := ,
image-manifest: $(foreach platform,$(IMAGE_PLATFORMS),dist/image/$(lastword $(subst /, ,$(platform)))/latchkey)
	@[ "$(notdir $(CONTAINER_ENGINE))" = podman ] || { echo "make image-manifest needs Podman (CONTAINER_ENGINE=podman); with Docker: docker buildx build --platform $(subst $(eval) ,$(comma),$(IMAGE_PLATFORMS)) --build-arg BINARY=prebuilt ." >&2; exit 2; }
	for platform in $(IMAGE_PLATFORMS); do $(MAKE) --no-print-directory image PLATFORM=$$platform || exit 1; done
	-$(CONTAINER_ENGINE) manifest rm $(IMAGE):$(VERSION)-multiarch >/dev/null 2>&1
	$(CONTAINER_ENGINE) manifest create $(IMAGE):$(VERSION)-multiarch
	for platform in $(IMAGE_PLATFORMS); do \
		id=$$($(CONTAINER_ENGINE) image inspect --format '{{.Id}}' $(IMAGE):$(VERSION)-$${platform#*/}) && \
		$(CONTAINER_ENGINE) manifest add $(IMAGE):$(VERSION)-multiarch containers-storage:$$id || exit 1; done

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
## file), and the README's examples; and the walk of every page's looks (screenshots, accessibility, layout in
## Chromium, minutes long), which no engine changes: the pages' flows run on both (account-admin-pages.test.ts).
E2E_ON_POSTGRES := $(filter-out $(addprefix test/e2e/,first-run.test.ts image.test.ts release.test.ts systemd.test.ts \
	privileges.test.ts backup-restore.test.ts readme-examples.test.ts pages-walk.test.ts),$(wildcard test/e2e/*.test.ts))

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
