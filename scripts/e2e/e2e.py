#!/usr/bin/python3
"""riptide end-to-end: a real file moves between real BitTorrent clients
that meet only through our tracker. Entry point: ./run (see README.md).

usage: e2e.py GROUP [--list] [FILTER ...]   (GROUP: udp, http, mixed, ws)
  FILTER: substring of a case name; a case runs if it matches any filter.
"""
import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

import common  # noqa: E402
from riptide import procs  # noqa: E402
from clients import CLIENTS  # noqa: E402
from clients.base import Job  # noqa: E402
from trackers import TRACKERS  # noqa: E402

FILE_SIZE = 8 << 20
PIECE = 64 << 10
TRANSFER_TIMEOUT = float(os.environ.get("E2E_TRANSFER_TIMEOUT", 90))  # one transfer, s
ANNOUNCE_TIMEOUT = 20.0      # first client's first announce answered
RESTART_RATE = 384 << 10     # seeder upload limit in restart cases, bytes/s
REANNOUNCE = 5              # restart cases: clients announce this often, s
RESTART_AT = 0.10            # restart the tracker once the leecher has this share
BROWSER_SIZE = 4 << 20       # ws group: bytes moved between the two WebTorrent pages
BROWSER_TIMEOUT = float(os.environ.get("E2E_BROWSER_TIMEOUT", 60))  # one ws case (browser start to verified file), s
BROWSER_DIR = Path(__file__).resolve().parent / "browser"


@dataclass
class Case:
    proto: str
    family: int
    seeder: str
    leecher: str
    kind: str = "transfer"   # or "restart"; ws group: "seeder-first" or "leecher-first"
    scheme: str = ""         # URL scheme, default proto; "https" in the http group
    leech_scheme: str = ""   # the leecher's URL scheme, default scheme (mixed group: the other one)

    def __post_init__(self):
        self.scheme = self.scheme or self.proto
        self.leech_scheme = self.leech_scheme or self.scheme

    @property
    def name(self):
        if self.proto == "ws":  # "wss6 leecher-first webtorrent->webtorrent"
            return f"{self.scheme}{self.family} {self.kind} {self.seeder}->{self.leecher}"
        k = " restart" if self.kind == "restart" else ""
        if self.leech_scheme != self.scheme:  # "udp4->http4 libtorrent->rtorrent"
            return f"{self.scheme}{self.family}->{self.leech_scheme}{self.family}{k} {self.seeder}->{self.leecher}"
        return f"{self.scheme}{self.family}{k} {self.seeder}->{self.leecher}"


def cases_for(proto):
    out = []
    if proto == "ws":  # two WebTorrent pages in headless Chromium; not clients/ adapters (one browser, two pages)
        return [Case(proto, fam, "webtorrent", "webtorrent", kind=order, scheme=scheme)
                for scheme in ("ws", "wss") for fam in (4, 6) for order in ("seeder-first", "leecher-first")]
    if proto == "udp":
        for fam in (4, 6):
            out += [Case(proto, fam, "libtorrent", "rtorrent"), Case(proto, fam, "rtorrent", "libtorrent")]
        out += [Case(proto, 4, "libtorrent", "rtorrent", "restart"),
                Case(proto, 6, "rtorrent", "libtorrent", "restart")]
        for extra in ("aria2", "transmission"):  # optional clients: v4 only here
            if extra in CLIENTS:
                out += [Case(proto, 4, "libtorrent", extra), Case(proto, 4, extra, "rtorrent")]
    if proto == "http":  # one riptide-http serves http:// and, for https cases, https:// beside it
        for scheme in ("http", "https"):
            for fam in (4, 6):
                out += [Case(proto, fam, "libtorrent", "rtorrent", scheme=scheme),
                        Case(proto, fam, "rtorrent", "libtorrent", scheme=scheme)]
            for extra in ("aria2", "transmission"):
                if extra in CLIENTS:
                    out += [Case(proto, 4, "libtorrent", extra, scheme=scheme),
                            Case(proto, 4, extra, "rtorrent", scheme=scheme)]
    if proto == "mixed":  # one riptide, one swarm: the seeder announces over one protocol, the leecher the other
        for fam in (4, 6):
            out += [Case(proto, fam, "libtorrent", "rtorrent", scheme="udp", leech_scheme="http"),
                    Case(proto, fam, "rtorrent", "libtorrent", scheme="http", leech_scheme="udp")]
        # aria2 (v4) over each protocol, as seeder and leecher. Not rtorrent->aria2 (stalls after a few
        # pieces with any tracker) nor Transmission (passes, 11-18 s a case: too slow for this group).
        if "aria2" in CLIENTS:
            out += [Case(proto, 4, "libtorrent", "aria2", scheme="udp", leech_scheme="http"),
                    Case(proto, 4, "aria2", "rtorrent", scheme="udp", leech_scheme="http"),
                    Case(proto, 4, "aria2", "libtorrent", scheme="http", leech_scheme="udp")]
    return [c for c in out if CLIENTS[c.seeder].supports(c.scheme, c.family)
            and CLIENTS[c.leecher].supports(c.leech_scheme, c.family)]


class CaseFailed(Exception):
    pass


class Runner:
    def __init__(self, case, root, deadline):
        self.case = case
        self.dir = root / re.sub(r"[^A-Za-z0-9.]+", "_", case.name)
        self.dir.mkdir(parents=True)
        self.deadline = deadline
        self.clients = []
        self.tracker = None
        self.browser = None
        self.note = ""

    def budget(self, want):
        left = self.deadline - time.monotonic()
        if left <= 1:
            raise CaseFailed("whole-run time budget used up")
        return min(want, left)

    def client(self, name, role, label, save_dir, torrent=None, **job_kw):
        wd = self.dir / label
        wd.mkdir()
        c = CLIENTS[name](Job(role=role, family=self.case.family, torrent=torrent or self.torrent, save_dir=save_dir,
                              workdir=wd, port=common.free_port(), ca_file=self.tracker.ca_file, **job_kw))
        self.clients.append(c)
        return c

    def start_and_wait_announce(self, c):
        c.start()
        if not common.wait_until(lambda: c.announced() or not c.alive(), self.budget(ANNOUNCE_TIMEOUT)) \
                or not c.announced():
            why = "exited" if not c.alive() else f"no answered announce within {ANNOUNCE_TIMEOUT:g}s"
            raise CaseFailed(f"{c.label()} {why}")

    def progress(self):
        return common.pieces_done(self.leech_dir / self.data.name, self.piece_len, self.hashes)

    def wait_complete(self, timeout, watch):
        n = len(self.hashes)

        def done_or_dead():
            dead = [c for c in watch if not c.alive()]
            return ("dead", dead) if dead else (self.progress() == n and ("done", None))

        r = common.wait_until(done_or_dead, self.budget(timeout), 0.2)
        if not r:
            raise CaseFailed(f"leecher has {self.progress()}/{n} pieces after {timeout:g}s")
        if r[0] == "dead":
            raise CaseFailed(", ".join(f"{c.label()} exited ({c.proc.returncode})" for c in r[1]))
        got = common.sha256_file(self.leech_dir / self.data.name)
        if got != self.sha:
            raise CaseFailed(f"leecher's file sha256 {got[:16]}… != original {self.sha[:16]}…")

    def setup(self):
        orig = self.dir / "orig"
        orig.mkdir()
        self.data = orig / "data.bin"
        common.make_random_file(self.data, FILE_SIZE)
        self.sha = common.sha256_file(self.data)
        tls = {"tls": True} if self.case.scheme == "https" else {}
        self.tracker = TRACKERS[self.case.proto](self.dir, common.free_port(), **tls)
        self.tracker.start(timeout=self.budget(10))
        self.torrent = self.dir / "data.torrent"
        self.piece_len, self.hashes = common.make_torrent(
            self.data, self.tracker.url(self.case.family, self.case.scheme), self.torrent, PIECE)
        self.leech_torrent = self.torrent
        if self.case.leech_scheme != self.case.scheme:  # same info dict (same torrent), other `announce`
            self.leech_torrent = self.dir / "data-leech.torrent"
            common.retarget_torrent(self.torrent, self.tracker.url(self.case.family, self.case.leech_scheme),
                                    self.leech_torrent)
        self.seed_dir = self.dir / "seed_data"
        self.seed_dir.mkdir()
        shutil.copy(self.data, self.seed_dir / self.data.name)
        self.leech_dir = self.dir / "leech_data"
        self.leech_dir.mkdir()

    def run_transfer(self):
        c = self.case
        seeder = self.client(c.seeder, "seed", "seeder", self.seed_dir)
        leecher = self.client(c.leecher, "leech", "leecher", self.leech_dir, torrent=self.leech_torrent)
        leech_first = CLIENTS[c.leecher].leech_first(c.leech_scheme, c.family)
        first, second = (leecher, seeder) if leech_first else (seeder, leecher)
        self.start_and_wait_announce(first)
        t0 = time.monotonic()
        second.start()
        self.wait_complete(TRANSFER_TIMEOUT, [seeder, leecher])
        return time.monotonic() - t0

    def run_restart(self):
        """Seeder A is rate limited; once the leecher has some pieces, the
        tracker is stopped (SIGTERM, must exit 0), seeder A is stopped, the
        tracker starts again on the same port and a new seeder B (new port,
        unlimited; over IPv4 on 127.0.0.2 because rTorrent keeps one peer per
        IP) starts. The leecher can only find B through the restarted
        tracker, so the transfer finishes only if they announce to it.
        Both clients announce every REANNOUNCE s (libtorrent's own minimum
        over UDP is 60 s, too slow for a test)."""
        c = self.case
        n = len(self.hashes)
        seeder_a = self.client(c.seeder, "seed", "seeder_a", self.seed_dir, upload_limit=RESTART_RATE)
        leecher = self.client(c.leecher, "leech", "leecher", self.leech_dir, reannounce_every=REANNOUNCE)
        self.start_and_wait_announce(seeder_a)
        t0 = time.monotonic()
        leecher.start()
        want = max(1, int(n * RESTART_AT))
        if not common.wait_until(lambda: self.progress() >= want or not leecher.alive() or not seeder_a.alive(),
                                 self.budget(TRANSFER_TIMEOUT)):
            raise CaseFailed(f"leecher got {self.progress()}/{n} pieces before the restart, wanted {want}")
        have = self.progress()
        if have >= n:
            raise CaseFailed("transfer finished before the tracker restart (seeder rate limit not effective)")
        rc = self.tracker.stop()
        if rc != 0:
            raise CaseFailed(f"tracker exited {rc} on SIGTERM (expected 0)")
        seeder_a.stop()
        self.tracker.start(timeout=self.budget(10))
        seeder_b = self.client(c.seeder, "seed", "seeder_b", self.seed_dir, reannounce_every=REANNOUNCE,
                               ip="127.0.0.2" if c.family == 4 else "")
        seeder_b.start()
        t_restart = time.monotonic()
        self.wait_complete(TRANSFER_TIMEOUT, [seeder_b, leecher])
        self.note = (f" (tracker restarted at {have}/{n} pieces; done {time.monotonic() - t_restart:.1f}s"
                     " after the restart)")
        return time.monotonic() - t0

    def run_browser(self):
        """ws group: browser/transfer.mjs moves BROWSER_SIZE random bytes
        between two WebTorrent pages in headless Chromium that meet only
        through this case's tracker (the first page starts, the second once
        the first page's first announce was answered) and checks the
        leecher's SHA-256. Its last line is the verdict: `PASS <s>` or
        `FAIL <reason>` (the page console logs come before it)."""
        c = self.case
        self.tracker = TRACKERS[c.proto](self.dir, common.free_port(("tcp",)), tls=c.scheme == "wss")
        self.tracker.start(timeout=self.budget(10))
        timeout = self.budget(BROWSER_TIMEOUT)
        argv = [shutil.which("node") or "/usr/bin/node", str(BROWSER_DIR / "transfer.mjs"),
                "--tracker", self.tracker.url(c.family, c.scheme), "--order", c.kind,
                "--size", str(BROWSER_SIZE), "--timeout", f"{timeout:.0f}", "--workdir", str(self.dir / "browser")]
        if c.scheme == "wss":
            argv += ["--ca", str(self.tracker.ca_file)]
        self.browser = procs.Proc("browser", argv, self.dir / "browser.log")
        try:
            rc = self.browser.wait(timeout + 15)  # transfer.mjs stops itself at `timeout`
        except subprocess.TimeoutExpired:
            self.browser.stop()
            raise CaseFailed(f"transfer.mjs did not stop by itself within {timeout + 15:.0f}s")
        verdict = [ln for ln in self.browser.log_text().splitlines() if ln.startswith(("PASS ", "FAIL "))]
        if rc == 0 and verdict and verdict[-1].startswith("PASS "):
            return float(verdict[-1].split()[1].rstrip("s"))
        raise CaseFailed(verdict[-1][5:] if verdict else f"transfer.mjs exited {rc} without a verdict")

    def run(self):
        try:
            if self.case.proto == "ws":
                secs = self.run_browser()
            else:
                self.setup()
                secs = self.run_restart() if self.case.kind == "restart" else self.run_transfer()
            ok, reason = True, ""
        except (CaseFailed, RuntimeError) as e:  # RuntimeError: tracker did not start
            ok, reason, secs = False, str(e), 0.0
        except Exception as e:  # noqa: BLE001 - a harness bug fails the case, not the run
            ok, reason, secs = False, f"harness error: {e!r}\n{traceback.format_exc()}", 0.0
        tails = [(cl.label(), cl.tail(20)) for cl in self.clients]
        for cl in self.clients:
            cl.stop()
        if self.browser:
            self.browser.stop()
            # the pages' console logs and states, up to the FAIL line (printed above already)
            tails.append(("browser (transfer.mjs: harness notes and page consoles)",
                          [ln for ln in self.browser.tail(150) if not ln.startswith("FAIL ")]))
        if self.tracker and self.tracker.proc:
            rc = self.tracker.stop()
            if ok and rc != 0:
                ok, reason = False, f"tracker exited {rc} on SIGTERM (expected 0)"
            tails.append(("tracker", self.tracker.tail(20)))
        return ok, secs, reason, tails


def reap_orphans():
    """As PID 1 of the ws group's PID namespace, collect the exit status of
    processes whose parent died before them (Chromium's helpers); called
    between cases, when none of our own Procs runs."""
    if os.getpid() != 1:
        return
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def main():
    procs.exit_on_signals()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("proto", choices=sorted(TRACKERS))
    ap.add_argument("filters", nargs="*")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--budget", type=float, default=360.0, help="seconds for the whole run")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, configs)")
    a = ap.parse_args()

    cases = [c for c in cases_for(a.proto) if not a.filters or any(f in c.name for f in a.filters)]
    if a.list:
        for c in cases:
            print(c.name)
        return 0
    if not cases:
        print(f"no case matches {a.filters}", file=sys.stderr)
        return 2
    if a.proto == "ws":
        # WebRTC on loopback: Chromium must see no interface but lo (scripts/e2e/run puts this run in
        # its own network namespace); elsewhere it would gather candidates on the host's real addresses.
        others = sorted(n for _, n in socket.if_nameindex() if n != "lo")
        if others:
            print(f"FAIL ws: network interfaces {others} besides lo: run the ws group through scripts/e2e/run "
                  "(own network namespace)")
            return 1
    try:
        tracker_bin = TRACKERS[a.proto](Path("."), 0).bin
    except RuntimeError as e:
        print(f"FAIL {a.proto}: {e}")
        return 1
    if not os.access(tracker_bin, os.X_OK):
        print(f"FAIL {a.proto}: tracker binary {tracker_bin} not found or not executable "
              f"(build it, or set {TRACKERS[a.proto].bin_env})")
        return 1
    deadline = time.monotonic() + a.budget
    root = Path(tempfile.mkdtemp(prefix="riptide-e2e-"))
    failed = 0
    try:
        for c in cases:
            r = Runner(c, root, deadline)
            ok, secs, reason, tails = r.run()
            if ok:
                print(f"PASS {c.name} {secs:.1f}s{r.note}", flush=True)
            else:
                failed += 1
                print(f"FAIL {c.name} ({reason})", flush=True)
                for who, lines in tails:
                    print(f"  --- {who}: last {len(lines)} log lines")
                    for line in lines:
                        print(f"  | {line}")
                sys.stdout.flush()
            reap_orphans()
    finally:
        procs.stop_all()
        if a.keep or failed:
            print(f"logs kept in {root}" if a.keep else "logs removed (E2E_KEEP=1 or --keep keeps them)")
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(f"{len(cases) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
