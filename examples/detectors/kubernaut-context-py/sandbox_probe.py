"""Test-only variant of app.py: the same detector plus a `probe` setting that makes it
try what the host's deny-by-default WASI must refuse, or misbehave, for the host's sandbox
tests (host/runtime/tests/python.rs). Built beside the detector as
`kubernaut_context_probe.wasm`; never ship it.

`probe` (taken out of the settings before app.py reads them):
- at `configure`: "files" (read /etc/passwd, list / and the working directory, read
  /proc/self/environ), "env" (environment, arguments, working directory), each outcome
  printed on stdout as one `probe ...` line;
- at every `detect`: "socket" (a TCP connection), "resolve" (a DNS lookup), "loop" (never
  returns), "sleep" (one hour), "allocate" (1 GiB), "print" (100 lines on stdout, one on
  stderr), "raise" (an uncaught exception).
"""

import json
import os
import sys
import time

import app
from app import Config  # noqa: F401  (the detector's state)


class Probe:
    mode = None


def attempt(what, f):
    try:
        result = f()
        print(f"probe {what} -> allowed: {result!r}"[:300])
    except BaseException as e:  # noqa: BLE001  (report whatever the sandbox raised)
        print(f"probe {what} -> denied: {type(e).__name__}: {e}"[:300])


def probe_files():
    attempt("open('/etc/passwd')", lambda: open("/etc/passwd").read(64))
    attempt("listdir('/')", lambda: os.listdir("/"))
    attempt("listdir('.')", lambda: os.listdir("."))
    attempt("open('/proc/self/environ')", lambda: open("/proc/self/environ").read(64))
    attempt("open('/tmp/x', 'w')", lambda: open("/tmp/x", "w").write("x"))


def probe_env():
    print(f"probe environ -> {dict(os.environ)!r}")
    print(f"probe argv -> {sys.argv!r}")
    attempt("getcwd()", os.getcwd)


def misbehave(mode):
    if mode == "socket":
        import socket

        socket.create_connection(("127.0.0.1", 80), timeout=1)
    elif mode == "resolve":
        import socket

        socket.getaddrinfo("kubernetes.default.svc", 443)
    elif mode == "loop":
        while True:
            pass
    elif mode == "sleep":
        time.sleep(3600)
    elif mode == "allocate":
        hoard = bytearray(1 << 30)
        return len(hoard)
    elif mode == "print":
        for i in range(100):
            print(f"line {i}")
        print("something went wrong", file=sys.stderr)
    elif mode == "raise":
        raise ValueError("boom from Python")


class Detector(app.Detector):
    def detect(self, service):
        misbehave(Probe.mode)
        return app.Detector.detect(self, service)


class Setup(app.Setup):
    def configure(self, settings: str) -> None:
        parsed = json.loads(settings)
        Probe.mode = parsed.pop("probe", None) if isinstance(parsed, dict) else None
        if Probe.mode == "files":
            probe_files()
        elif Probe.mode == "env":
            probe_env()
        app.Setup.configure(self, json.dumps(parsed))


class HttpApis(app.HttpApis):
    pass
