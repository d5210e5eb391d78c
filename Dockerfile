# Latchkey's image: the compiled binary alone on a minimal glibc base (Bun's executables need libc, so not
# scratch). Both bases are build arguments, so they can be swapped (the tests build stand-ins from Debian's
# packages; no image registry is reachable there). `make image` builds it; the README shows how to run it.
ARG BUN_IMAGE=oven/bun:1.4.5
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12
# Where the binary comes from: "source", compiled in the stage below (`docker build .`, `make image`), or "prebuilt",
# the cross-compiled release binary of the target platform (`make image PLATFORM=linux/arm64`). Podman 4 (buildah
# 1.28) skips the stage a default names: give it explicitly (`--build-arg BINARY=source`, as `make image` does).
ARG BINARY=source

FROM ${BUN_IMAGE} AS source
WORKDIR /src
COPY package.json bun.lock bunfig.toml tsconfig.json ./
# The dependency patches the lockfile names (bun patch), applied by the install.
COPY patches ./patches
RUN bun install --frozen-lockfile
COPY src ./src
COPY drizzle ./drizzle
# The same flags as `make build` (Makefile BUILD_FLAGS); COMMIT is what `latchkey --version` and /health name.
ARG COMMIT=unknown
RUN bun build --compile --minify --no-compile-autoload-dotenv --no-compile-autoload-bunfig \
      --define "LATCHKEY_COMMIT=\"${COMMIT}\"" src/main.ts --outfile /out/latchkey \
 && mkdir /out/data

# The release binary of the target platform and an empty data folder, from dist/image/<arch>/ in the build context
# (`make image PLATFORM=...` puts them there), the way Pocket ID builds its images: nothing runs for the target
# platform, so an arm64 image is assembled on an x64 machine without emulation.
FROM scratch AS prebuilt
ARG TARGETARCH
COPY dist/image/${TARGETARCH}/ /out/

# The binary and the data folder the image takes (/out/latchkey, /out/data), from one of the two stages above.
FROM ${BINARY} AS build

FROM ${RUNTIME_IMAGE}
COPY --from=build /out/latchkey /usr/local/bin/latchkey
# A named volume starts as a copy of this folder: owned by 1000, it works for `--user 1000:1000` too. Started as
# root (the default), the binary gives DATA_DIR to PUID:PGID itself, whatever owns a bind-mounted folder.
COPY --from=build --chown=1000:1000 /out/data /data
ENV DATA_DIR=/data HOST=0.0.0.0 PORT=3000
# The binary changes user only when PUID is set (src/privileges.ts): in the image it always is.
ENV PUID=1000 PGID=1000
VOLUME /data
EXPOSE 3000
# No shell or curl in the image: the binary checks itself (GET /health on PORT).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["/usr/local/bin/latchkey", "healthcheck"]
# What `latchkey serve` finishes in-flight requests on before it exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/latchkey"]
CMD ["serve"]

# The licence travels with the binary (MIT); the labels say what the image is (OCI image spec, annotations).
COPY LICENSE /usr/share/doc/latchkey/LICENSE
ARG VERSION=unknown
ARG REVISION=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="Latchkey" \
      org.opencontainers.image.description="Self-hosted authentication server in one executable" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="MIT"
