"""The worker image, built here with no registry: `make image`.

Real OCI containers run on this machine with podman, buildah and runc from Debian's
packages, as root, with the project's own configuration (local/containers/) and
storage under .local/containers: the host's global configuration is left alone.

The image comes from worker-image/Dockerfile, the file users build, with
`--target local`: the baton-worker built on the host (a Rust toolchain cannot be
fetched into a container here) on a base assembled from the host's Debian packages
(the dynamic loader, glibc, libgcc_s, the CA bundle and a passwd entry for 65532:
what distroless `cc` holds).

    python -m baton_local.image build      # installs podman if needed, builds localhost/baton-worker:local
    python -m baton_local.image env        # the environment podman needs, for a shell
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # local/baton_local/<this file>
STATE = ROOT / ".local" / "containers"
CONF = ROOT / "local" / "containers" / "containers.conf"
IMAGE = "localhost/baton-worker:local"
BASE = "localhost/baton-base:local"
PACKAGES = ["podman", "buildah", "runc", "conmon", "catatonit"]
# podman's --init (ECS's initProcessEnabled) runs this as the container's PID 1.
CATATONIT = Path("/usr/libexec/podman/catatonit")


def installed() -> bool:
    """podman, buildah, runc and the init process podman's --init runs."""
    return all(shutil.which(p) for p in ("podman", "buildah", "runc")) and CATATONIT.exists()
# What the base holds, from the host's Debian packages (libc6, libgcc-s1, ca-certificates).
LIBRARIES = ["libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1", "libgcc_s.so.1"]


def env() -> dict:
    """podman's environment: the project's containers.conf and storage under .local."""
    STATE.mkdir(parents=True, exist_ok=True)
    storage = STATE / "storage.conf"
    wanted = (f'[storage]\ndriver = "overlay"\ngraphroot = "{STATE / "storage"}"\n'
              f'runroot = "{STATE / "run"}"\n')
    if not storage.exists() or storage.read_text() != wanted:
        storage.write_text(wanted)
    return {"CONTAINERS_CONF": str(CONF), "CONTAINERS_STORAGE_CONF": str(storage)}


def containers_unavailable() -> str:
    """Why tasks cannot run as containers here, or '' when they can: podman (with
    buildah and runc) is missing and cannot be installed, because this is not root or
    there is no apt-get. BATON_LOCAL_NO_CONTAINERS=1 says they cannot, whatever the
    machine (the fallback's test)."""
    if os.environ.get("BATON_LOCAL_NO_CONTAINERS", "") not in ("", "0"):
        return "BATON_LOCAL_NO_CONTAINERS is set"
    if installed():
        return ""
    if os.geteuid() != 0:
        return "podman is not installed and this is not root"
    if not shutil.which("apt-get"):
        return "podman is not installed and there is no apt-get"
    return ""


def ensure_installed() -> None:
    """podman, buildah, runc and catatonit from Debian's packages, once (idempotent)."""
    if installed():
        return
    if os.geteuid() != 0:
        sys.exit("podman is not installed and this is not root: apt-get install " + " ".join(PACKAGES))
    print("==> installing " + " ".join(PACKAGES) + " from Debian's packages", flush=True)
    quiet = {"DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=dict(os.environ, **quiet), stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES], check=True,
                   env=dict(os.environ, **quiet), stdout=subprocess.DEVNULL)


def podman(*args, check=True, capture=True, **kwargs):
    return subprocess.run(["podman", *args], check=check, capture_output=capture, text=True,
                          env=dict(os.environ, **env()), **kwargs)


def host_file(name: str) -> Path:
    for folder in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu",
                   "/usr/lib/aarch64-linux-gnu"):
        path = Path(folder) / name
        if path.exists():
            return path
    raise FileNotFoundError(name)


def build_base() -> None:
    """The base: a FROM-scratch root holding the loader, glibc, libgcc_s, CA bundle and
    a passwd entry for the non-root user, imported as BASE."""
    with tempfile.TemporaryDirectory(prefix="baton-base-") as rootfs:
        root = Path(rootfs)
        loader = Path("/lib64/ld-linux-x86-64.so.2")
        if not loader.exists():
            loader = Path("/lib/ld-linux-aarch64.so.1")
        target = root / loader.relative_to("/")
        target.parent.mkdir(parents=True)
        shutil.copy2(loader.resolve(), target)
        for name in LIBRARIES:
            source = host_file(name)
            (root / source.parent.relative_to("/")).mkdir(parents=True, exist_ok=True)
            shutil.copy2(source.resolve(), root / source.relative_to("/"))
        (root / "etc/ssl/certs").mkdir(parents=True)
        shutil.copy2(Path("/etc/ssl/certs/ca-certificates.crt").resolve(), root / "etc/ssl/certs/ca-certificates.crt")
        (root / "etc/passwd").write_text("root:x:0:0:root:/root:/sbin/nologin\n"
                                         "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")
        (root / "etc/group").write_text("root:x:0:\nnonroot:x:65532:\n")
        for folder in ("tmp", "home/nonroot"):
            (root / folder).mkdir(parents=True)
        (root / "tmp").chmod(0o1777)
        tar = subprocess.Popen(["tar", "-C", rootfs, "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
        podman("import", "-", BASE, stdin=tar.stdout)
        tar.wait()


def worker_binary() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    binary = target / "debug" / "baton-worker"
    subprocess.run(["cargo", "build", "--quiet", "--locked", "-p", "baton-worker"], check=True, cwd=ROOT)
    return binary


def build() -> str:
    """Build IMAGE from worker-image/Dockerfile (`--target local`); its size in bytes."""
    ensure_installed()
    started = time.monotonic()
    build_base()
    with tempfile.TemporaryDirectory(prefix="baton-image-") as context:
        # Debug information stays on the host: the image gets the stripped program.
        subprocess.run(["strip", "--strip-debug", "-o", str(Path(context) / "baton-worker"), str(worker_binary())],
                       check=True)
        podman("build", "--pull=never", "--target", "local", "--build-arg", f"LOCAL_BASE={BASE}",
               "-f", str(ROOT / "worker-image" / "Dockerfile"), "-t", IMAGE, context)
    podman("image", "prune", "-f", check=False)  # the images this build replaced
    size = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout.strip())
    base = int(podman("image", "inspect", "--format", "{{.Size}}", BASE).stdout.strip())
    print(f"built {IMAGE}: {size / 1e6:.1f} MB (base {base / 1e6:.1f} MB + baton-worker) "
          f"in {time.monotonic() - started:.1f} s")
    return IMAGE


def remove_containers(prefix: str = "baton-task-") -> None:
    """Every container the local stack started (running or not)."""
    names = podman("ps", "-a", "--format", "{{.Names}}", check=False).stdout.split()
    ours = [n for n in names if n.startswith(prefix)]
    if ours:
        podman("rm", "-f", "-t", "0", *ours, check=False)


def main(argv) -> None:
    command = argv[1] if len(argv) > 1 else "build"
    if command == "build":
        build()
    elif command == "env":
        for key, value in env().items():
            print(f"export {key}={value}")
    elif command == "clean":
        remove_containers()
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
