"""How to start each tracker under test. Adding a protocol (http, ws): one
class here with start/stop/url/ready, and one line in TRACKERS."""
import os
from pathlib import Path

from common import host_port
from riptide import udp
from riptide.procs import Proc

REPO = Path(__file__).resolve().parents[2]


def _bin(env, default):
    p = os.environ.get(env) or str(REPO / default)
    return p


class UdpTracker:
    proto = "udp"
    bin_env = "RIPTIDE_UDP_BIN"

    def __init__(self, workdir, port, announce_interval=5):
        self.workdir = Path(workdir)
        self.port = port
        self.announce_interval = announce_interval
        self.bin = _bin(self.bin_env, "target/debug/riptide-udp")
        self.proc = None
        self.starts = 0

    def url(self, family):
        return f"udp://{host_port(family, self.port)}"

    def config(self):
        return (
            'log_level = "info"\n'
            "[network]\n"
            f'address_ipv4 = "{host_port(4, self.port)}"\n'
            f'address_ipv6 = "{host_port(6, self.port)}"\n'
            "[protocol]\n"
            f"announce_interval = {self.announce_interval}\n"
        )

    def start(self, timeout=10.0):
        """Start and wait until both sockets answer; raises on failure."""
        if not os.access(self.bin, os.X_OK):
            raise RuntimeError(f"tracker binary {self.bin} missing (set {self.bin_env})")
        cfg = self.workdir / "tracker.toml"
        cfg.write_text(self.config())
        self.starts += 1
        self.proc = Proc(f"riptide-udp#{self.starts}", [self.bin, "-c", str(cfg)],
                         self.workdir / "tracker.log")
        for fam in (4, 6):
            if not udp.wait_ready(host_port(fam, self.port), timeout):
                code = self.proc.returncode
                raise RuntimeError(f"tracker not answering BEP 15 connect on {host_port(fam, self.port)} "
                                   f"within {timeout:g}s" + (f" (exited {code})" if code is not None else ""))

    def stop(self):
        """SIGTERM; returns the exit code (contract: 0)."""
        return self.proc.stop() if self.proc else None

    def tail(self, n=20):
        return self.proc.tail(n) if self.proc else []


TRACKERS = {"udp": UdpTracker}
