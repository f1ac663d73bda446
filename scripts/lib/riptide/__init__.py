"""Shared by riptide's bench and e2e scripts (standard library only, so they
run on a fresh machine). What it owns: starting, pinning and stopping child
processes (`procs`), reading their CPU time and memory from /proc (`cpu`),
medians, ratios and the order of A/B rounds (`stats`), markdown tables
(`table`) and the one BEP 15 connect probe that says a UDP tracker is
serving (`udp`). What it does not own: how each tracker or load generator
is configured, and what a bench measures; those stay in the scripts.

A script under scripts/ finds it with
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
(scripts/e2e/: "..", "lib"). See scripts/lib/README.md.
"""
