/**
 * Issue 14: the Dockerfile users get, built and run for real with Podman (Debian's package, Docker-compatible).
 * No image registry is reachable here, so the two bases are stand-ins built with mmdebstrap from Debian's
 * packages and passed as the Dockerfile's build arguments: a minimal bookworm root without a shell (like
 * distroless/cc) for the runtime stage, the same plus Node/npm and Bun from the npm registry for the build stage.
 * They are cached in dist/podman/ (Podman's storage, with this test's own containers.conf and storage.conf), keyed
 * by their recipe, so a second run only rebuilds what changed.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { AUTH, send, waitFor } from "../support/client";
import { freePort, owners, removeDataDir, tempDataDir } from "../support/server";

const ROOT = resolve(import.meta.dir, "../..");
const STATE = join(ROOT, "dist/podman");
const BUN_VERSION = readFileSync(join(ROOT, "Makefile"), "utf8").match(/^BUN_VERSION := (.+)$/m)![1]!;
const MIRROR = "http://deb.debian.org/debian";
const PASSWORD = "correct horse battery";
const IMAGE = "localhost/latchkey:test";

/** Podman in a sandbox (project guide): no ulimits to set, cgroupfs, Debian's runc, the host's network. */
const CONTAINERS_CONF = `[containers]
default_ulimits = []
netns = "host"
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"
`;
const STORAGE_CONF = `[storage]
driver = "overlay"
runroot = "${STATE}/run"
graphroot = "${STATE}/storage"
`;
const ENV = {
  PATH: process.env.PATH ?? "",
  HOME: STATE,
  CONTAINERS_CONF: join(STATE, "containers.conf"),
  CONTAINERS_STORAGE_CONF: join(STATE, "storage.conf"),
};

async function run(command: string[], options: { stdin?: string; cwd?: string; env?: Record<string, string> } = {}) {
  const proc = Bun.spawn(command, {
    cwd: options.cwd ?? ROOT,
    env: { ...ENV, ...options.env },
    stdin: options.stdin === undefined ? "ignore" : new TextEncoder().encode(options.stdin),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

async function must(command: string[], options: Parameters<typeof run>[1] = {}) {
  const result = await run(command, options);
  if (result.code !== 0) throw new Error(`${command.join(" ")} exited with ${result.code}:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

const podman = (...args: string[]) => ["podman", "--runtime", "runc", ...args];

/**
 * mmdebstrap recipes of the two stand-in bases. The build stage trusts what this machine trusts (its CA bundle,
 * with any TLS-inspecting proxy's certificate) to reach the npm registry, as the official image would on the
 * user's own network.
 */
const RUNTIME_PACKAGES = "--include=libc6,libgcc-s1,libstdc++6,base-files,netbase,tzdata";
const STAND_INS = {
  runtime: {
    args: ["--variant=extract", "--arch=amd64", RUNTIME_PACKAGES],
    arch: "amd64",
    changes: [] as string[],
  },
  // The same for arm64: "extract" only unpacks the packages (no maintainer scripts), so nothing runs under emulation.
  "runtime-arm64": {
    args: ["--variant=extract", "--arch=arm64", RUNTIME_PACKAGES],
    arch: "arm64",
    changes: [] as string[],
  },
  bun: {
    args: [
      "--variant=apt",
      "--include=nodejs,npm,ca-certificates",
      `--customize-hook=cp /etc/ssl/certs/ca-certificates.crt "$1/etc/ssl/certs/ca-certificates.crt"`,
      `--customize-hook=chroot "$1" env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt npm install -g --no-audit --no-fund bun@${BUN_VERSION}`,
      `--customize-hook=chroot "$1" bun --version`,
      `--customize-hook=rm -rf "$1/root/.npm"`,
    ],
    arch: "amd64",
    changes: ["ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt", "ENV PATH=/usr/local/bin:/usr/bin:/bin", "WORKDIR /"],
  },
};

/** The stand-in's tag: a hash of its recipe, so a changed recipe builds a new one and an unchanged one is reused. */
async function standIn(name: keyof typeof STAND_INS): Promise<string> {
  const recipe = STAND_INS[name];
  const key = new Bun.CryptoHasher("sha256").update(JSON.stringify({ recipe, MIRROR })).digest("hex").slice(0, 12);
  const tag = `localhost/latchkey-standin-${name}:${key}`;
  if ((await run(podman("image", "exists", tag))).code === 0) return tag;
  const tarball = join(STATE, `${name}.tar`);
  try {
    await must(["mmdebstrap", "--quiet", ...recipe.args, "bookworm", tarball, MIRROR]);
    await must(podman("import", "--arch", recipe.arch, ...recipe.changes.flatMap((change) => ["--change", change]), tarball, tag));
  } finally {
    rmSync(tarball, { force: true });
  }
  return tag;
}

function expectOwnedBy(dir: string, owner: string) {
  const files = owners(dir);
  expect(Object.keys(files)).toContain("latchkey.db");
  for (const [path, found] of Object.entries(files)) expect(`${path} ${found}`).toBe(`${path} ${owner}`);
}

/** The server process's real, effective, saved and filesystem uid, seen from the host (no user namespace). */
async function serverUid(container: string): Promise<string> {
  const pid = (await must(podman("inspect", "--format", "{{.State.Pid}}", container))).trim();
  return readFileSync(`/proc/${pid}/status`, "utf8").match(/^Uid:\t(.*)$/m)![1]!;
}

/** What `make image` is told here: Podman, a local name, a fixed version and source (the revision is the commit's). */
const SOURCE = "https://git.example.test/latchkey";
const MAKE_IMAGE = ["CONTAINER_ENGINE=podman", "IMAGE=localhost/latchkey", "VERSION=test", `IMAGE_SOURCE=${SOURCE}`];
const RUNTIME_LIST = "localhost/latchkey-standin-runtime:both";
/** The output of `make image-manifest` (its build steps). */
let manifestBuild = "";

const containers: string[] = [];
const dataDir = tempDataDir();
const port = freePort();
const url = `http://127.0.0.1:${port}`;

async function startContainer(name: string, extra: string[] = []) {
  containers.push(name);
  await must(podman("run", "-d", "--network", "host", "--name", name, "-e", `PORT=${port}`, "-e", "HOST=127.0.0.1", "-v", `${dataDir}:/data`, ...extra, IMAGE));
  expect(await healthy()).toBe(200);
}

/** /health's status once it answers 200, or the last one seen after a minute (0: no answer). */
const healthy = () => waitFor(() => fetch(`${url}/health`).then((reply) => reply.status, () => 0), (status) => status === 200, 60_000);

beforeAll(async () => {
  mkdirSync(STATE, { recursive: true });
  writeFileSync(ENV.CONTAINERS_CONF, CONTAINERS_CONF);
  writeFileSync(ENV.CONTAINERS_STORAGE_CONF, STORAGE_CONF);
  // Left by an interrupted run.
  const stale = (await must(podman("ps", "-a", "--filter", "name=^latchkey-test-", "--format", "{{.Names}}"))).split("\n").filter(Boolean);
  if (stale.length) await run(podman("rm", "-f", ...stale));
  const [bunImage, runtimeImage, runtimeArm64] = [await standIn("bun"), await standIn("runtime"), await standIn("runtime-arm64")];
  // `make image`, the target users run, with the stand-ins as the Dockerfile's build arguments.
  await must(["make", "-s", "image", ...MAKE_IMAGE, `IMAGE_BUILD_FLAGS=--network host --build-arg BUN_IMAGE=${bunImage} --build-arg RUNTIME_IMAGE=${runtimeImage}`]);
  // `make image-manifest`: the amd64 and arm64 images from the release binaries. Its runtime base is, like
  // distroless/cc, one name for both platforms: a manifest list of the two stand-ins.
  await run(podman("manifest", "rm", RUNTIME_LIST));
  await must(podman("manifest", "create", RUNTIME_LIST));
  for (const image of [runtimeImage, runtimeArm64]) await must(podman("manifest", "add", RUNTIME_LIST, `containers-storage:${image}`));
  manifestBuild = await must(["make", "--no-print-directory", "image-manifest", ...MAKE_IMAGE, `IMAGE_BUILD_FLAGS=--build-arg RUNTIME_IMAGE=${RUNTIME_LIST}`]);
  // Docker creates a missing bind-mount source as an empty root-owned folder.
  chmodSync(dataDir, 0o755);
}, 20 * 60_000);

afterAll(async () => {
  if (containers.length) await run(podman("rm", "-f", "-t", "5", ...containers));
  removeDataDir(dataDir);
}, 60_000);

describe("the image built from the Dockerfile", () => {
  test("declares /data, port 3000, its health check, SIGTERM, and no user (it drops root itself)", async () => {
    const config = JSON.parse(await must(podman("image", "inspect", "--format", "{{json .Config}}", IMAGE)));
    const healthcheck = JSON.parse(await must(podman("image", "inspect", "--format", "{{json .HealthCheck}}", IMAGE)));
    expect({
      env: config.Env.filter((entry: string) => /^(DATA_DIR|HOST|PORT|PUID|PGID)=/.test(entry)).sort(),
      volumes: Object.keys(config.Volumes),
      ports: Object.keys(config.ExposedPorts),
      stopSignal: config.StopSignal,
      entrypoint: config.Entrypoint,
      cmd: config.Cmd,
      user: config.User ?? "",
      healthcheck: healthcheck.Test,
    }).toEqual({
      // The binary changes user only when PUID is set (issue 22): the image sets it.
      env: ["DATA_DIR=/data", "HOST=0.0.0.0", "PGID=1000", "PORT=3000", "PUID=1000"],
      volumes: ["/data"],
      ports: ["3000/tcp"],
      stopSignal: "SIGTERM",
      entrypoint: ["/usr/local/bin/latchkey"],
      cmd: ["serve"],
      user: "",
      healthcheck: ["CMD", "/usr/local/bin/latchkey", "healthcheck"],
    });
  });

  test("the Dockerfile's default build stage is the official Bun image at the Makefile's Bun version", () => {
    expect(readFileSync(join(ROOT, "Dockerfile"), "utf8")).toContain(`ARG BUN_IMAGE=oven/bun:${BUN_VERSION}\n`);
  });

  test("on an empty root-owned bind mount: healthy, serving as uid 1000, the files owned by 1000", async () => {
    expect(owners(dataDir)).toEqual({ ".": "0:0" });
    await startContainer("latchkey-test-root");
    expect((await run(podman("healthcheck", "run", "latchkey-test-root"))).code).toBe(0);
    expect(await (await fetch(`${url}/health`)).json()).toMatchObject({ status: "ok" });
    expect(await serverUid("latchkey-test-root")).toBe("1000\t1000\t1000\t1000");
    // `docker exec` runs as root: the CLI drops to 1000 too, and leaves nothing root-owned.
    await must(podman("exec", "-i", "latchkey-test-root", "/usr/local/bin/latchkey", "user", "add", "alice", "--admin"), { stdin: `${PASSWORD}\n` });
    expectOwnedBy(dataDir, "1000:1000");
  }, 120_000);

  let refreshToken = "";
  let accessToken = "";
  test("stop and start: the user and the session survive", async () => {
    const login = await send(url, "POST", `${AUTH}/login`, { json: { username: "alice", password: PASSWORD } });
    expect(login.status).toBe(200);
    refreshToken = login.body.refresh_token;
    await must(podman("stop", "-t", "10", "latchkey-test-root"));
    // SIGTERM (STOPSIGNAL) let the server finish and exit 0, not a kill after the timeout.
    expect((await must(podman("inspect", "--format", "{{.State.ExitCode}}", "latchkey-test-root"))).trim()).toBe("0");
    expect(await must(podman("logs", "latchkey-test-root"))).toContain("latchkey: stopped");
    await must(podman("start", "latchkey-test-root"));
    expect(await healthy()).toBe(200);
    const refreshed = await send(url, "POST", `${AUTH}/refresh`, { json: { refresh_token: refreshToken } });
    expect(refreshed.status).toBe(200);
    accessToken = refreshed.body.access_token;
    refreshToken = refreshed.body.refresh_token;
    const me = await send(url, "GET", `${AUTH}/me`, { headers: { authorization: `Bearer ${accessToken}` } });
    expect({ status: me.status, username: me.body.user?.username }).toEqual({ status: 200, username: "alice" });
    await must(podman("stop", "-t", "10", "latchkey-test-root"));
  }, 120_000);

  test("--user 1000:1000 on the same folder: runs as 1000 and keeps the data", async () => {
    await startContainer("latchkey-test-user", ["--user", "1000:1000"]);
    expect((await run(podman("healthcheck", "run", "latchkey-test-user"))).code).toBe(0);
    expect(await serverUid("latchkey-test-user")).toBe("1000\t1000\t1000\t1000");
    expect(await must(podman("logs", "latchkey-test-user"))).not.toContain("started as root");
    const refreshed = await send(url, "POST", `${AUTH}/refresh`, { json: { refresh_token: refreshToken } });
    expect(refreshed.status).toBe(200);
    expectOwnedBy(dataDir, "1000:1000");
    await must(podman("stop", "-t", "10", "latchkey-test-user"));
  }, 120_000);
});

/** The image's labels, architecture and config (what `docker inspect` shows). */
async function inspect(image: string) {
  const [labels, architecture, config] = await Promise.all([
    must(podman("image", "inspect", "--format", "{{json .Labels}}", image)),
    must(podman("image", "inspect", "--format", "{{.Architecture}}", image)),
    must(podman("image", "inspect", "--format", "{{json .Config}}", image)),
  ]);
  const { Labels: _, ...rest } = JSON.parse(config);
  return { labels: JSON.parse(labels), architecture: architecture.trim(), config: rest };
}

/** A file of the image, read from its mounted filesystem (Podman as root: `podman image mount`). */
async function fileOf(image: string, path: string): Promise<Buffer> {
  const root = (await must(podman("image", "mount", image))).trim();
  try {
    return readFileSync(join(root, path));
  } finally {
    await run(podman("image", "unmount", image));
  }
}

const ELF_MACHINE = { 62: "x86-64", 183: "aarch64" } as Record<number, string>;
const machineOf = (binary: Buffer) => (binary.subarray(0, 4).toString("latin1") === "\x7fELF" ? ELF_MACHINE[binary.readUInt16LE(18)] : "not ELF");

describe("issue 22: labels, licence, the arm64 image and the multi-arch manifest", () => {
  const revision = () => Bun.spawnSync(["git", "rev-parse", "HEAD"], { cwd: ROOT }).stdout.toString().trim();

  test.each([IMAGE, "localhost/latchkey:test-amd64", "localhost/latchkey:test-arm64"])("%s carries the OCI labels and LICENSE", async (image) => {
    const { labels } = await inspect(image);
    expect(Object.fromEntries(Object.entries(labels).filter(([name]) => name.startsWith("org.opencontainers.image.")))).toEqual({
      "org.opencontainers.image.title": "Latchkey",
      "org.opencontainers.image.description": "Self-hosted authentication server in one executable",
      "org.opencontainers.image.version": "test",
      "org.opencontainers.image.revision": revision(),
      "org.opencontainers.image.source": SOURCE,
      "org.opencontainers.image.licenses": "MIT",
    });
    expect((await fileOf(image, "usr/share/doc/latchkey/LICENSE")).toString()).toBe(readFileSync(join(ROOT, "LICENSE"), "utf8"));
  });

  test("make image PLATFORM=linux/arm64: an arm64 image around the cross-compiled aarch64 binary, configured as the amd64 one, built without running anything", async () => {
    const [arm64, amd64, fromSource] = await Promise.all([inspect("localhost/latchkey:test-arm64"), inspect("localhost/latchkey:test-amd64"), inspect(IMAGE)]);
    expect([arm64.architecture, amd64.architecture]).toEqual(["arm64", "amd64"]);
    const binary = await fileOf("localhost/latchkey:test-arm64", "usr/local/bin/latchkey");
    expect(machineOf(binary)).toBe("aarch64");
    expect(binary.equals(readFileSync(join(ROOT, "dist/release/latchkey-linux-arm64")))).toBe(true);
    expect(machineOf(await fileOf("localhost/latchkey:test-amd64", "usr/local/bin/latchkey"))).toBe("x86-64");
    // The same entrypoint, command, environment, volume, port, health check and stop signal as the image built from source.
    expect(arm64.config).toEqual(fromSource.config);
    expect(amd64.config).toEqual(fromSource.config);
    // No RUN step: nothing executed for arm64 (qemu-user-static, installed here, would have hidden an emulated one).
    expect(manifestBuild).toContain("COPY --from=build /out/latchkey /usr/local/bin/latchkey");
    expect(manifestBuild).not.toMatch(/STEP \d+\/\d+: RUN /);
  });

  test("make image-manifest: latchkey:VERSION-multiarch lists the amd64 and the arm64 image", async () => {
    const list = JSON.parse(await must(podman("manifest", "inspect", "localhost/latchkey:test-multiarch")));
    const digest = async (image: string) => (await must(podman("image", "inspect", "--format", "{{.Digest}}", image))).trim();
    expect(list.manifests.map((entry: { digest: string; platform: { os: string; architecture: string } }) => ({ digest: entry.digest, ...entry.platform })))
      .toEqual([
        { digest: await digest("localhost/latchkey:test-amd64"), os: "linux", architecture: "amd64" },
        { digest: await digest("localhost/latchkey:test-arm64"), os: "linux", architecture: "arm64" },
      ]);
  });
});
