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


class Tracker:
    """What every tracker under test shares: its binary (`bin_env` or
    target/debug/`default_bin`), its work directory, the config sections
    every riptide tracker reads, starting it with `-c` (and a ready file),
    and stopping it."""
    bin_env = ""
    default_bin = ""
    workers = 1
    protocols = ""  # the combined binary's `protocols` key
    schemes = ()  # of its ready file's lines; the first is served without TLS
    missing_hint = ""

    def __init__(self, workdir, port, announce_interval=5, tls=False):
        self.workdir = Path(workdir)
        self.port = port
        self.announce_interval = announce_interval
        self.tls = tls
        self.tls_port = free_port(("tcp",)) if tls and port else 0
        self.name = self.default_bin
        self.bin = _bin(self.bin_env, f"target/debug/{self.default_bin}")
        self.argv = [self.bin]
        self.proc = None
        self.starts = 0
        self.ca_file = self.cert = self.key = None
        self.sockets = {}  # (scheme, family) -> "127.0.0.1:P" / "[::1]:P", from the ready file

    def config(self):
        """`workers`, `[network]` on `port` and `[protocol]`; with tls, `[tls]`
        on `tls_port` with the test CA's certificate."""
        cfg = (
            'log_level = "info"\n'
            f"workers = {self.workers}\n"
            + (f"protocols = {self.protocols}\n" if self.protocols else "")
            + "[network]\n"
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

    def launch(self, ready_file=True):
        """Write the config (and the test CA) and start the binary; returns
        the ready file's path (None without one)."""
        if not os.access(self.bin, os.X_OK):
            raise RuntimeError(f"tracker binary {self.bin} missing (set {self.bin_env}{self.missing_hint})")
        if self.tls and self.ca_file is None:
            self.ca_file, self.cert, self.key = make_test_ca(self.workdir / "tls")
        cfg = self.workdir / "tracker.toml"
        cfg.write_text(self.config())
        argv = [*self.argv, "-c", str(cfg)]
        ready = None
        if ready_file:
            ready = self.workdir / "tracker.ready"
            ready.unlink(missing_ok=True)
            argv += ["--ready-file", str(ready)]
        self.starts += 1
        self.proc = Proc(f"{self.name}#{self.starts}", argv, self.workdir / "tracker.log")
        return ready

    def wanted(self):
        """The (scheme, family) pairs the ready file must list."""
        return {(s, f) for s in (self.schemes if self.tls else self.schemes[:1]) for f in (4, 6)}

    def start(self, timeout=10.0):
        """Start and wait until the ready file lists every socket; raises on failure."""
        self.wait_ready(self.launch(), self.wanted(), timeout)

    def parse_ready(self, text):
        """(scheme, family) -> address of each complete line of the ready
        file (it may be half written) whose scheme is one of `schemes`."""
        out = {}
        for line in text.split("\n")[:-1]:
            scheme, _, addr = line.partition(" ")
            if scheme in self.schemes and addr:
                out[(scheme, 6 if addr.startswith("[") else 4)] = addr
        return out

    def wait_ready(self, ready, want, timeout):
        """Wait until the ready file lists every (scheme, family) of `want`;
        keeps what it lists in `sockets`, raises on failure."""
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
        raise RuntimeError(f"{self.proc.name} listed {sorted(got)} in its ready file within {timeout:g}s, "
                           f"wanted {sorted(want)}" + (f" (exited {code})" if code is not None else ""))

    def stop(self):
        """SIGTERM; returns the exit code (contract: 0)."""
        return self.proc.stop() if self.proc else None

    def tail(self, n=20):
        return self.proc.tail(n) if self.proc else []


class UdpTracker(Tracker):
    proto = "udp"
    bin_env = "RIPTIDE_UDP_BIN"
    default_bin = "riptide-udp"

    def __init__(self, workdir, port, announce_interval=5):
        super().__init__(workdir, port, announce_interval)

    def url(self, family, scheme="udp"):
        return f"udp://{host_port(family, self.port)}"

    def start(self, timeout=10.0):
        """Start and wait until both sockets answer; raises on failure."""
        self.launch(ready_file=False)
        for fam in (4, 6):
            if not udp.wait_ready(host_port(fam, self.port), timeout):
                code = self.proc.returncode
                raise RuntimeError(f"tracker not answering BEP 15 connect on {host_port(fam, self.port)} "
                                   f"within {timeout:g}s" + (f" (exited {code})" if code is not None else ""))


class HttpTracker(Tracker):
    """riptide-http: plain listeners on `port` (127.0.0.1 and ::1) and, with
    tls=True, TLS listeners on a second port with a certificate from a test
    CA made for this tracker (`ca_file`: what clients must trust). Ready
    once `--ready-file` lists every socket."""
    proto = "http"
    bin_env = "RIPTIDE_HTTP_BIN"
    default_bin = "riptide-http"
    schemes = ("http", "https")

    def url(self, family, scheme="http"):
        port = self.tls_port if scheme == "https" else self.port
        return f"{scheme}://{host_port(family, port)}/announce"  # libtorrent: exactly /announce on loopback

    def config(self):
        return super().config() + (
            "[http]\n"
            "max_connections = 256\n"
            f"min_interval = {self.announce_interval}\n"
        )


class RiptideTracker(HttpTracker):
    """riptide: udp:// and http:// from one process, one swarm per torrent.
    Both protocols bind `port` (UDP and TCP, 127.0.0.1 and ::1; 0 = the
    kernel picks, then UDP and HTTP get different ports). The sockets it
    actually serves are read from `--ready-file` (`udp 127.0.0.1:P`,
    `http [::1]:P`, ...); ready once it lists all four and both UDP
    sockets answer a BEP 15 connect. `workers = 2`, so an HTTP announce
    may land on a worker that does not own the torrent's shard."""
    proto = "mixed"
    bin_env = "RIPTIDE_BIN"
    default_bin = "riptide"
    workers = 2
    protocols = '["udp", "http"]'
    schemes = ("udp", "http")

    def __init__(self, workdir, port, announce_interval=5):
        super().__init__(workdir, port, announce_interval)

    def url(self, family, scheme):
        addr = self.sockets[(scheme, family)]
        return f"udp://{addr}" if scheme == "udp" else f"http://{addr}/announce"  # libtorrent: exactly /announce

    def wanted(self):
        return {(s, f) for s in self.schemes for f in (4, 6)}

    def start(self, timeout=10.0):
        """Start and wait until the ready file lists every socket and UDP
        answers; raises on failure."""
        end = time.monotonic() + timeout
        super().start(timeout)
        for fam in (4, 6):
            addr = self.sockets[("udp", fam)]
            if not udp.wait_ready(addr, max(0.5, end - time.monotonic())):
                raise RuntimeError(f"tracker not answering BEP 15 connect on {addr}")


class WsTracker(Tracker):
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
    default_bin = "riptide-ws"
    workers = 2
    schemes = ("ws", "wss")
    missing_hint = ", or E2E_WS_TRACKER=reference"

    def __init__(self, workdir, port, announce_interval=5, tls=False):
        super().__init__(workdir, port, announce_interval, tls)
        self.name = os.environ.get("E2E_WS_TRACKER") or "riptide-ws"
        if self.name == "reference":
            self.bin = shutil.which("node") or "/usr/bin/node"
            self.argv = [self.bin, str(REPO / "scripts/e2e/browser/reference-tracker.mjs")]
        elif self.name != "riptide-ws":
            raise RuntimeError(f"E2E_WS_TRACKER={self.name}: expected riptide-ws (default) or reference")

    def url(self, family, scheme="ws"):
        return f"{scheme}://{self.sockets[(scheme, family)]}"


TRACKERS = {"udp": UdpTracker, "http": HttpTracker, "mixed": RiptideTracker, "ws": WsTracker}
