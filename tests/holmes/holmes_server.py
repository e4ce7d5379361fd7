"""HolmesGPT's server, reduced to what loads and reloads toolsets (no LLM call).

The PyPI wheel of holmesgpt 0.45.0 ships the library, `holmes.config.Config`, the admin app
(`holmes.admin.admin_api.init_admin_app`) and the auth helpers (`holmes.utils.auth`), but not
the server's entry file (`server.py` upstream). This file does what upstream `server.py` does
for toolsets, with the package's own objects:

- `Config.load_from_file(DEFAULT_CONFIG_LOCATION)` when that file exists, else
  `Config.load_from_env()` (upstream `init_config`); `dal = config.dal`. The toolset file is
  read by the package from `CUSTOM_TOOLSET_LOCATION`.
- API-key auth when env `HOLMES_API_KEY` is set: the same middleware as upstream (paths in
  `AUTH_EXEMPT_PATHS` exempt, else `extract_api_key(request)` must equal the key, else 401).
- `init_admin_app(app, config, dal)`: `POST /api/admin/reload/toolsets` and friends.
- The periodic refresh loop (`TOOLSET_STATUS_REFRESH_INTERVAL_SECONDS`): a thread calling
  `config.refresh_tool_executor(dal, toolset_tag_filter=[CORE, CLUSTER],
  enable_all_toolsets_possible=False)`, as upstream `_toolset_status_refresh_loop`.
- `/healthz`, `/readyz` as upstream.

Test-only additions:
- `GET /test/toolsets`: what the server's tool executor serves, read from HolmesGPT's objects
  (`config.cached_tool_executor`, built like a request would with
  `config.create_server_tool_executor(dal)` when there is none): each toolset's name, enabled,
  status, error and config. Behind the same auth as everything else.
- `POST /test/fail-reloads/{n}`: the next n reload calls answer 500 (fault injection; the
  API-key middleware, added after it, runs first).
- env `HARNESS_RESOLVE_SUFFIX` (e.g. `.svc.cluster.local`): host names ending with it resolve
  to 127.0.0.1, so HolmesGPT's own health checks reach the test's loopback backends (the
  controller's probes do the same with `--resolve`).

Run: HOLMES_PORT=5050 CUSTOM_TOOLSET_LOCATION=/path/toolsets.yaml HOLMES_API_KEY=... python holmes_server.py
"""

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import logging
import socket
import threading
import time
from pathlib import Path

_suffix = os.environ.get("HARNESS_RESOLVE_SUFFIX", "").strip()
if _suffix:
    _real_getaddrinfo = socket.getaddrinfo

    def _getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and host.rstrip(".").endswith(_suffix.rstrip(".")):
            host = "127.0.0.1"
        return _real_getaddrinfo(host, *args, **kwargs)

    socket.getaddrinfo = _getaddrinfo

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from holmes.admin.admin_api import init_admin_app
from holmes.common.env_vars import HOLMES_PORT, TOOLSET_STATUS_REFRESH_INTERVAL_SECONDS
from holmes.config import DEFAULT_CONFIG_LOCATION, Config
from holmes.core.tools import ToolsetTag
from holmes.utils.auth import AUTH_EXEMPT_PATHS, extract_api_key

logging.basicConfig(
    level=os.environ.get("LOG_LEVEL", "INFO"),
    format="%(asctime)s.%(msecs)03d %(levelname)-8s holmes: %(message)s",
    datefmt="%H:%M:%S",
)


def init_config():
    path = Path(DEFAULT_CONFIG_LOCATION)
    if path.exists():
        config = Config.load_from_file(path)
    else:
        config = Config.load_from_env()
    return config, config.dal


config, dal = init_config()
app = FastAPI()

# Test-only fault injection: the next N reloads answer 500 (as a failing reload does).
_fail_reloads = {"n": 0}


@app.middleware("http")
async def inject_reload_failures(request: Request, call_next):
    if request.url.path == "/api/admin/reload/toolsets" and _fail_reloads["n"] > 0:
        _fail_reloads["n"] -= 1
        return JSONResponse(status_code=500, content={"detail": "injected reload failure"})
    return await call_next(request)


HOLMES_API_KEY = os.environ.get("HOLMES_API_KEY", "").strip()
if HOLMES_API_KEY:
    logging.info("API key authentication enabled (HOLMES_API_KEY is set)")

    @app.middleware("http")
    async def api_key_auth(request: Request, call_next):
        if request.url.path in AUTH_EXEMPT_PATHS:
            return await call_next(request)
        if extract_api_key(request) != HOLMES_API_KEY:
            logging.warning("Unauthorized request: %s %s", request.method, request.url.path)
            return JSONResponse(status_code=401, content={"detail": "Invalid or missing API key"})
        return await call_next(request)


init_admin_app(app, config, dal)


def _toolset_status_refresh_loop():
    interval = TOOLSET_STATUS_REFRESH_INTERVAL_SECONDS
    if interval <= 0:
        logging.info("Periodic toolset status refresh is disabled")
        return

    def refresh_loop():
        while True:
            time.sleep(interval)
            try:
                changes = config.refresh_tool_executor(
                    dal,
                    toolset_tag_filter=[ToolsetTag.CORE, ToolsetTag.CLUSTER],
                    enable_all_toolsets_possible=False,
                )
                for name, old, new in changes or []:
                    logging.info(f"Toolset '{name}' status changed: {old} -> {new}")
            except Exception:
                logging.error("Error during periodic toolset status refresh", exc_info=True)

    threading.Thread(target=refresh_loop, daemon=True, name="toolset-refresh").start()


@app.get("/healthz")
def health_check():
    return {"status": "healthy"}


@app.get("/readyz")
def readiness_check():
    return {"status": "ready"}


def _plain(value):
    """JSON-safe copy of a toolset's config (pydantic models, enums, secrets as text)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "model_dump"):
        return _plain(value.model_dump())
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if hasattr(value, "value"):
        return _plain(value.value)
    return str(value)


@app.post("/test/fail-reloads/{n}")
def fail_reloads(n: int):
    _fail_reloads["n"] = n
    return {"fail_next": n}


@app.get("/test/toolsets")
def served_toolsets():
    executor = config.cached_tool_executor or config.create_server_tool_executor(dal)
    out = {}
    for t in executor.toolsets:
        out[t.name] = {
            "enabled": bool(t.enabled),
            "status": _plain(t.status),
            "error": t.error,
            "config": _plain(t.config),
            "tools": sorted(tool.name for tool in t.tools),
        }
    return {"toolsets": out}


if __name__ == "__main__":
    _toolset_status_refresh_loop()
    uvicorn.run(app, host="127.0.0.1", port=HOLMES_PORT, log_level="warning")
