"""How to start each tracker under test. Adding a protocol: one class here
with start/stop/url/ready, and one line in TRACKERS (its key is the `run`
argument)."""
import os
import shutil
import time
from pathlib import Path

from common import free_port, host_port, make_test_ca
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
        self.ca_file = None

    def url(self, family, scheme="udp"):
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


class HttpTracker:
    """riptide-http: plain listeners on `port` (127.0.0.1 and ::1) and, with
    tls=True, TLS listeners on a second port with a certificate from a test
    CA made for this tracker (`ca_file`: what clients must trust). Ready
    once `--ready-file` lists every socket."""
    proto = "http"
    bin_env = "RIPTIDE_HTTP_BIN"

    def __init__(self, workdir, port, announce_interval=5, tls=False):
        self.workdir = Path(workdir)
        self.port = port
        self.announce_interval = announce_interval
        self.tls = tls
        self.tls_port = free_port(("tcp",)) if tls and port else 0
        self.bin = _bin(self.bin_env, "target/debug/riptide-http")
        self.proc = None
        self.starts = 0
        self.ca_file = self.cert = self.key = None

    def url(self, family, scheme="http"):
        port = self.tls_port if scheme == "https" else self.port
        return f"{scheme}://{host_port(family, port)}/announce"  # libtorrent: exactly /announce on loopback

    def config(self):
        cfg = (
            'log_level = "info"\n'
            "workers = 1\n"
            "[network]\n"
            f'address_ipv4 = "{host_port(4, self.port)}"\n'
            f'address_ipv6 = "{host_port(6, self.port)}"\n'
            "[protocol]\n"
            f"announce_interval = {self.announce_interval}\n"
            "[http]\n"
            "max_connections = 256\n"
            f"min_interval = {self.announce_interval}\n"
        )
        if self.tls:
            cfg += (
                "[tls]\n"
                "enabled = true\n"
                f'cert_path = "{self.cert}"\n'
                f'key_path = "{self.key}"\n'
                f'address_ipv4 = "{host_port(4, self.tls_port)}"\n'
                f'address_ipv6 = "{host_port(6, self.tls_port)}"\n'
            )
        return cfg

    def expected_ready(self):
        want = {f"http {host_port(f, self.port)}" for f in (4, 6)}
        if self.tls:
            want |= {f"https {host_port(f, self.tls_port)}" for f in (4, 6)}
        return want

    def start(self, timeout=10.0):
        """Start and wait until the ready file lists every socket; raises on failure."""
        if not os.access(self.bin, os.X_OK):
            raise RuntimeError(f"tracker binary {self.bin} missing (set {self.bin_env})")
        if self.tls and self.ca_file is None:
            self.ca_file, self.cert, self.key = make_test_ca(self.workdir / "tls")
        cfg = self.workdir / "tracker.toml"
        cfg.write_text(self.config())
        ready = self.workdir / "tracker.ready"
        ready.unlink(missing_ok=True)
        self.starts += 1
        self.proc = Proc(f"riptide-http#{self.starts}",
                         [self.bin, "-c", str(cfg), "--ready-file", str(ready)], self.workdir / "tracker.log")
        want = self.expected_ready()
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.proc.alive():
            try:
                got = set(ready.read_text().split("\n"))
            except FileNotFoundError:
                got = set()
            if want <= got:
                return
            time.sleep(0.05)
        code = self.proc.returncode
        raise RuntimeError(f"tracker did not list {sorted(want)} in its ready file within {timeout:g}s"
                           + (f" (exited {code})" if code is not None else ""))

    def stop(self):
        """SIGTERM; returns the exit code (contract: 0)."""
        return self.proc.stop() if self.proc else None

    def tail(self, n=20):
        return self.proc.tail(n) if self.proc else []


class RiptideTracker:
    """riptide: udp:// and http:// from one process, one swarm per torrent.
    Both protocols bind `port` (UDP and TCP, 127.0.0.1 and ::1; 0 = the
    kernel picks, then UDP and HTTP get different ports). The sockets it
    actually serves are read from `--ready-file` (`udp 127.0.0.1:P`,
    `http [::1]:P`, ...); ready once it lists all four and both UDP
    sockets answer a BEP 15 connect. `workers = 2`, so an HTTP announce
    may land on a worker that does not own the torrent's shard."""
    proto = "mixed"
    bin_env = "RIPTIDE_BIN"
    schemes = ("udp", "http")

    def __init__(self, workdir, port, announce_interval=5):
        self.workdir = Path(workdir)
        self.port = port
        self.announce_interval = announce_interval
        self.bin = _bin(self.bin_env, "target/debug/riptide")
        self.proc = None
        self.starts = 0
        self.ca_file = None
        self.sockets = {}  # (scheme, family) -> "127.0.0.1:P" / "[::1]:P", from the ready file

    def url(self, family, scheme):
        addr = self.sockets[(scheme, family)]
        return f"udp://{addr}" if scheme == "udp" else f"http://{addr}/announce"  # libtorrent: exactly /announce

    def config(self):
        return (
            'log_level = "info"\n'
            "workers = 2\n"
            'protocols = ["udp", "http"]\n'
            "[network]\n"
            f'address_ipv4 = "{host_port(4, self.port)}"\n'
            f'address_ipv6 = "{host_port(6, self.port)}"\n'
            "[protocol]\n"
            f"announce_interval = {self.announce_interval}\n"
            "[http]\n"
            "max_connections = 256\n"
            f"min_interval = {self.announce_interval}\n"
        )

    @staticmethod
    def parse_ready(text):
        out = {}
        for line in text.split("\n")[:-1]:  # complete lines only (the file may be half written)
            scheme, _, addr = line.partition(" ")
            if scheme in RiptideTracker.schemes and addr:
                out[(scheme, 6 if addr.startswith("[") else 4)] = addr
        return out

    def start(self, timeout=10.0):
        """Start and wait until the ready file lists every socket and UDP
        answers; raises on failure."""
        if not os.access(self.bin, os.X_OK):
            raise RuntimeError(f"tracker binary {self.bin} missing (set {self.bin_env})")
        cfg = self.workdir / "tracker.toml"
        cfg.write_text(self.config())
        ready = self.workdir / "tracker.ready"
        ready.unlink(missing_ok=True)
        self.starts += 1
        self.proc = Proc(f"riptide#{self.starts}",
                         [self.bin, "-c", str(cfg), "--ready-file", str(ready)], self.workdir / "tracker.log")
        want = {(s, f) for s in self.schemes for f in (4, 6)}
        end = time.monotonic() + timeout
        got = {}
        while time.monotonic() < end and self.proc.alive():
            try:
                got = self.parse_ready(ready.read_text())
            except FileNotFoundError:
                got = {}
            if want <= got.keys():
                break
            time.sleep(0.05)
        else:
            code = self.proc.returncode
            raise RuntimeError(f"tracker listed {sorted(got)} in its ready file within {timeout:g}s, "
                               f"wanted {sorted(want)}" + (f" (exited {code})" if code is not None else ""))
        self.sockets = got
        for fam in (4, 6):
            addr = got[("udp", fam)]
            if not udp.wait_ready(addr, max(0.5, end - time.monotonic())):
                raise RuntimeError(f"tracker not answering BEP 15 connect on {addr}")

    def stop(self):
        """SIGTERM; returns the exit code (contract: 0)."""
        return self.proc.stop() if self.proc else None

    def tail(self, n=20):
        return self.proc.tail(n) if self.proc else []


class WsTracker:
    """The WebSocket (WebTorrent) tracker: riptide-ws, or with
    E2E_WS_TRACKER=reference the npm `bittorrent-tracker` server
    (scripts/e2e/browser/reference-tracker.mjs, same command line, config
    subset and ready file), the stand-in the harness was proven against.
    `ws://` on `port` (127.0.0.1 and ::1) and, with tls=True, `wss://` on a
    second port with a certificate from a test CA made for this tracker
    (`ca_file`). Ready once `--ready-file` lists every socket (`ws
    127.0.0.1:P`, `ws [::1]:P`, `wss 127.0.0.1:Q`, `wss [::1]:Q`); the URLs
    are built from what it lists. `workers = 2`: the two pages' connections
    may land on different workers."""
    proto = "ws"
    bin_env = "RIPTIDE_WS_BIN"
    schemes = ("ws", "wss")

    def __init__(self, workdir, port, announce_interval=5, tls=False):
        self.workdir = Path(workdir)
        self.port = port
        self.announce_interval = announce_interval
        self.tls = tls
        self.tls_port = free_port(("tcp",)) if tls and port else 0
        self.kind = os.environ.get("E2E_WS_TRACKER") or "riptide-ws"
        if self.kind == "reference":
            self.bin = shutil.which("node") or "/usr/bin/node"
            self.argv = [self.bin, str(REPO / "scripts/e2e/browser/reference-tracker.mjs")]
        elif self.kind == "riptide-ws":
            self.bin = _bin(self.bin_env, "target/debug/riptide-ws")
            self.argv = [self.bin]
        else:
            raise RuntimeError(f"E2E_WS_TRACKER={self.kind}: expected riptide-ws (default) or reference")
        self.proc = None
        self.starts = 0
        self.ca_file = self.cert = self.key = None
        self.sockets = {}  # (scheme, family) -> "127.0.0.1:P" / "[::1]:P", from the ready file

    def url(self, family, scheme="ws"):
        return f"{scheme}://{self.sockets[(scheme, family)]}"

    def config(self):
        cfg = (
            'log_level = "info"\n'
            "workers = 2\n"
            "[network]\n"
            f'address_ipv4 = "{host_port(4, self.port)}"\n'
            f'address_ipv6 = "{host_port(6, self.port)}"\n'
            "[protocol]\n"
            f"announce_interval = {self.announce_interval}\n"
        )
        if self.tls:
            cfg += (
                "[tls]\n"
                "enabled = true\n"
                f'cert_path = "{self.cert}"\n'
                f'key_path = "{self.key}"\n'
                f'address_ipv4 = "{host_port(4, self.tls_port)}"\n'
                f'address_ipv6 = "{host_port(6, self.tls_port)}"\n'
            )
        return cfg

    def wanted(self):
        return {(s, f) for s in (self.schemes if self.tls else ("ws",)) for f in (4, 6)}

    @classmethod
    def parse_ready(cls, text):
        out = {}
        for line in text.split("\n")[:-1]:  # complete lines only
            scheme, _, addr = line.partition(" ")
            if scheme in cls.schemes and addr:
                out[(scheme, 6 if addr.startswith("[") else 4)] = addr
        return out

    def start(self, timeout=10.0):
        """Start and wait until the ready file lists every socket; raises on failure."""
        if not os.access(self.bin, os.X_OK):
            raise RuntimeError(f"tracker binary {self.bin} missing (set {self.bin_env}, "
                               "or E2E_WS_TRACKER=reference)")
        if self.tls and self.ca_file is None:
            self.ca_file, self.cert, self.key = make_test_ca(self.workdir / "tls")
        cfg = self.workdir / "tracker.toml"
        cfg.write_text(self.config())
        ready = self.workdir / "tracker.ready"
        ready.unlink(missing_ok=True)
        self.starts += 1
        self.proc = Proc(f"{self.kind}#{self.starts}", [*self.argv, "-c", str(cfg), "--ready-file", str(ready)],
                         self.workdir / "tracker.log")
        want = self.wanted()
        end = time.monotonic() + timeout
        got = {}
        while time.monotonic() < end and self.proc.alive():
            try:
                got = self.parse_ready(ready.read_text())
            except FileNotFoundError:
                got = {}
            if want <= got.keys():
                self.sockets = got
                return
            time.sleep(0.05)
        code = self.proc.returncode
        raise RuntimeError(f"{self.kind} listed {sorted(got)} in its ready file within {timeout:g}s, "
                           f"wanted {sorted(want)}" + (f" (exited {code})" if code is not None else ""))

    def stop(self):
        """SIGTERM; returns the exit code (contract: 0)."""
        return self.proc.stop() if self.proc else None

    def tail(self, n=20):
        return self.proc.tail(n) if self.proc else []


TRACKERS = {"udp": UdpTracker, "http": HttpTracker, "mixed": RiptideTracker, "ws": WsTracker}
