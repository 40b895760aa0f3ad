"""A model of S3's network shape on this machine: a per-connection rate cap.

Real S3 serves each connection at about 85-90 MB/s and reaches an instance's
bandwidth only through many connections at once (AWS's S3 performance guidelines,
"horizontal scaling and request parallelization"). A local server on loopback has no
such cap: one stream gets everything, so a client that reads one stream looks as fast
as one that reads sixteen. This model puts the server and the client in two network
namespaces of their own, joined by a veth pair, and caps every TCP connection in each
direction with its own HTB class:

- the client namespace's ephemeral ports are limited to `PORTS` (256) ports, so each
  connection has a port of its own and a u32 filter maps it to one class exactly
  (no hashing, so two connections never share a cap);
- every class may reach `per_flow` (its `ceil`) by borrowing from their parent, which
  holds the aggregate cap; each class is assured only its share of the aggregate
  (`rate = aggregate / PORTS`), since HTB assures a class its `rate` whatever its
  parent allows.

The machine's kernel has neither `fq` (whose `maxrate` is the usual per-flow cap) nor
`netem` (delay): `python3 bench/s3_model.py --check` says what is missing. So the model
has no added round-trip time; on loopback namespaces the RTT is tens of microseconds.
S3's per-request latency matters less than the per-connection cap for 8-16 MiB
ranges (a 20 ms first byte on a 0.3 s range is 6 %), and every tool gets the same.

Everything stays on this machine: the namespaces and the veth pair are created by
`S3Model` and removed when it exits (also on Ctrl-C).
"""

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

PORT_BASE = 40000
PORTS = 256
SERVER_IP = "10.231.0.2"
CLIENT_IP = "10.231.0.1"
SERVER_PORT = 9000


def _run(*argv, check=True):
    return subprocess.run(argv, check=check, capture_output=True, text=True)


def unavailable() -> str | None:
    """Why the model cannot run here, or None."""
    if os.geteuid() != 0:
        return "the S3 model needs root (network namespaces and tc)"
    for tool in ["ip", "tc"]:
        if shutil.which(tool) is None:
            return f"the S3 model needs `{tool}` (iproute2)"
    probe = f"bs3probe{os.getpid()}"
    made = _run("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    try:
        link = _run("ip", "-n", probe, "link", "add", "p0", "type", "veth", "peer", "name", "p1", check=False)
        if link.returncode != 0:
            return f"no veth pairs: {link.stderr.strip()}"
        htb = _run("ip", "netns", "exec", probe, "tc", "qdisc", "add", "dev", "p0", "root", "handle", "1:", "htb", check=False)
        if htb.returncode != 0:
            return f"no htb qdisc: {htb.stderr.strip()}"
    finally:
        _run("ip", "netns", "del", probe, check=False)
    return None


class S3Model:
    """Two namespaces, a veth pair, per-connection caps, and a server inside.

    `server_argv(host, port)` gives the server's command line; `client(argv)` gives the
    command line that runs a program in the client namespace."""

    def __init__(self, per_flow_mbit: int, aggregate_mbit: int, name: str = f"bs3m{os.getpid()}"):
        self.per_flow_mbit = per_flow_mbit
        self.aggregate_mbit = aggregate_mbit
        self.server_ns = f"{name}s"
        self.client_ns = f"{name}c"
        self.endpoint = f"http://{SERVER_IP}:{SERVER_PORT}"
        self.server = None

    def params(self) -> str:
        return (f"each TCP connection capped at {self.per_flow_mbit} Mbit/s ({self.per_flow_mbit / 8:.1f} MB/s) per direction, "
                f"{self.aggregate_mbit} Mbit/s ({self.aggregate_mbit / 8:.0f} MB/s) in all, no added delay "
                f"(HTB classes per connection on a veth pair between two network namespaces)")

    def client(self, argv):
        return ["ip", "netns", "exec", self.client_ns, *map(str, argv)]

    def _shape(self, ns: str, dev: str, port_field: str):
        """HTB on `dev`'s egress: one class per client port (`sport` on the client's
        side, `dport` on the server's), all under the aggregate cap."""
        tc = ["ip", "netns", "exec", ns, "tc"]
        batch = [f"qdisc add dev {dev} root handle 1: htb default 2 r2q 100",
                 f"class add dev {dev} parent 1: classid 1:1 htb rate {self.aggregate_mbit}mbit ceil {self.aggregate_mbit}mbit",
                 # Anything that is not a client connection (ARP, handshakes to other ports).
                 f"class add dev {dev} parent 1:1 classid 1:2 htb rate {self.per_flow_mbit}mbit ceil {self.per_flow_mbit}mbit"]
        share_kbit = max(8, self.aggregate_mbit * 1000 // PORTS)
        for i in range(PORTS):
            cls = f"1:{i + 16:x}"
            batch.append(f"class add dev {dev} parent 1:1 classid {cls} htb rate {share_kbit}kbit "
                         f"ceil {self.per_flow_mbit}mbit burst 64k cburst 64k")
            batch.append(f"filter add dev {dev} parent 1: protocol ip prio 1 u32 match ip {port_field} {PORT_BASE + i} 0xffff flowid {cls}")
        subprocess.run([*tc, "-batch", "-"], input="\n".join(batch) + "\n", text=True, check=True, capture_output=True)

    def __enter__(self):
        try:
            for ns in [self.server_ns, self.client_ns]:
                _run("ip", "netns", "add", ns)
                _run("ip", "-n", ns, "link", "set", "lo", "up")
            _run("ip", "-n", self.client_ns, "link", "add", "c0", "type", "veth", "peer", "name", "s0", "netns", self.server_ns)
            _run("ip", "-n", self.client_ns, "addr", "add", f"{CLIENT_IP}/24", "dev", "c0")
            _run("ip", "-n", self.server_ns, "addr", "add", f"{SERVER_IP}/24", "dev", "s0")
            _run("ip", "-n", self.client_ns, "link", "set", "c0", "up")
            _run("ip", "-n", self.server_ns, "link", "set", "s0", "up")
            # One port per connection, reused quickly: the caps are per port.
            _run("ip", "netns", "exec", self.client_ns, "sysctl", "-qw",
                 f"net.ipv4.ip_local_port_range={PORT_BASE} {PORT_BASE + PORTS - 1}")
            _run("ip", "netns", "exec", self.client_ns, "sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1")
            self._shape(self.client_ns, "c0", "sport")
            self._shape(self.server_ns, "s0", "dport")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def start_server(self, argv, log: Path, ready_timeout=30):
        """Run the server in the server namespace; wait until it accepts connections."""
        self.server = subprocess.Popen(["ip", "netns", "exec", self.server_ns, *map(str, argv)], stdout=log.open("w"),
                                       stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise RuntimeError(f"the server exited: {log.read_text()[-2000:]}")
            probe = _run(*self.client(["curl", "-s", "-o", "/dev/null", "--max-time", "1", self.endpoint]), check=False)
            if probe.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"the server did not answer within {ready_timeout} s: {log.read_text()[-2000:]}")

    def __exit__(self, *exc):
        if self.server is not None and self.server.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.server.pid, 15)
            try:
                self.server.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.server.pid, 9)
                self.server.wait()
        for ns in [self.client_ns, self.server_ns]:
            _run("ip", "netns", "del", ns, check=False)
        return False


if __name__ == "__main__":
    if "--check" in sys.argv:
        why = unavailable()
        print(why or "the S3 model can run here")
        sys.exit(1 if why else 0)
