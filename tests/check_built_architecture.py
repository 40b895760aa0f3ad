"""After `sam build --config-env ENV`: every Lambda binary in .aws-sam/build is for the
architecture that samconfig.toml's ENV gives, the one `sam deploy` will declare.

The check reads the ELF header (e_machine) of each bootstrap, so an arm64 build for an
x86_64 stack, or the reverse, fails here rather than at the first invocation."""

import re
import struct
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MACHINES = {0x3E: "x86_64", 0xB7: "arm64"}


def configured_architecture(env: str) -> str:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    overrides = config[env]["global"]["parameters"]["parameter_overrides"]
    found = re.search(r"\bArchitecture=(\w+)", overrides)
    if not found:
        sys.exit(f"samconfig.toml [{env}.global.parameters] sets no Architecture")
    return found.group(1)


def elf_architecture(path: Path) -> str:
    header = path.read_bytes()[:20]
    if header[:4] != b"\x7fELF":
        sys.exit(f"{path}: not an ELF binary")
    (machine,) = struct.unpack_from("<H", header, 18)
    return MACHINES.get(machine, hex(machine))


def main(env: str) -> None:
    expected = configured_architecture(env)
    binaries = sorted((ROOT / ".aws-sam" / "build").glob("*/bootstrap"))
    if not binaries:
        sys.exit("no .aws-sam/build/*/bootstrap: run sam build first")
    built = (ROOT / ".aws-sam" / "build" / "template.yaml").read_text()
    wrong = [f"{b.parent.name}: {elf_architecture(b)}" for b in binaries if elf_architecture(b) != expected]
    if wrong:
        sys.exit(f"samconfig [{env}] says {expected}, but sam build made: {', '.join(wrong)}")
    print(f"{len(binaries)} Lambda binaries built for {expected}, as samconfig.toml [{env}] declares for deploy")
    if "Architecture" not in built:
        sys.exit("the built template lost its Architecture parameter")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "ci")
