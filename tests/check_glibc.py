"""The glibc a binary needs: the newest GLIBC_x.y symbol version it imports must be
at most the one given, so it runs on every base image that has at least that glibc
(Amazon Linux 2 has 2.26; Debian 12, python:*-slim and Amazon Linux 2023 newer).

    python tests/check_glibc.py <binary> 2.17
"""

import re
import subprocess
import sys


def needed(binary):
    symbols = subprocess.run(["objdump", "-T", binary], capture_output=True, text=True, check=True).stdout
    versions = {tuple(map(int, v.split("."))) for v in re.findall(r"GLIBC_(\d+(?:\.\d+)+)", symbols)}
    libraries = subprocess.run(["objdump", "-p", binary], capture_output=True, text=True, check=True).stdout
    return max(versions), re.findall(r"NEEDED\s+(\S+)", libraries)


def main(binary, most):
    newest, libraries = needed(binary)
    allowed = tuple(map(int, most.split(".")))
    shown = ".".join(map(str, newest))
    # Only glibc's own libraries and libgcc_s: present in every glibc base image.
    foreign = [lib for lib in libraries if not re.match(r"(libc|libm|libdl|libpthread|librt|libgcc_s|ld-linux).*\.so", lib)]
    if newest > allowed or foreign:
        sys.exit(f"{binary} needs GLIBC_{shown} (at most {most} allowed) and {', '.join(libraries)}")
    print(f"{binary}: needs GLIBC_{shown} at most (allowed {most}); libraries {', '.join(libraries)}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
