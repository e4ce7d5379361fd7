"""Kubernaut Context API detector, written in Python and built with componentize-py.

An example third-party detector (dynamic-toolset:detector@1.2.0, world `api-detector`). It
recognises the Kubernaut Context API Service and answers with a fragment of toolset
`kubernaut/context` on the Service it found (instead of `localhost:8091`). It describes the
Context API (`http-apis`): the three operations of the seed's tools (`get_action_history`,
`analyze_patterns`, `discover_context_types`) as requests under `/api/v1/context/`, which
the host turns into a HolmesGPT `type: http` toolset. HolmesGPT's own HTTP client then
sends GET requests to that Service and those paths only: no command runs in its pod, so
the detector needs no `allow_commands` grant.

Source of truth: ../shared/seeds/holmesgpt-hybrid-architecture.md, sections "Kubernaut
Context API Tools" (the tools and paths), "Kubernetes Deployment with Hybrid Access"
(`KUBERNAUT_CONTEXT_API=http://kubernaut-context-api:8091`: the Service name and port) and
"Health Checks" (`/api/v1/context/health`).

Settings (the declaration's `settings:`, handed to `configure`):
- `port` (integer, default 8091): the Service port of the Context API;
- `service_names` (list of strings, default ["kubernaut-context-api"]): Service names (or
  `app.kubernetes.io/name` / `app` label values) that are the Context API.

The host runs it only with `wasi: true` in its declaration: CPython imports WASI. It has no
files, no environment and no network there; what it prints reaches the host's log.
"""

import json

from wit_world import exports
from wit_world.exports import http_apis, setup
from wit_world.imports import log, types

NAME = "kubernaut-context"
VERSION = "0.1.0"
BACKEND = "kubernaut"
TOOLSET = "kubernaut/context"
# The rank of a backend's main Service (the SDK's `rank::PRIMARY`).
RANK = 200

DEFAULT_PORT = 8091
DEFAULT_SERVICE_NAMES = ["kubernaut-context-api"]
NAME_LABELS = ("app.kubernetes.io/name", "app")
HEALTH_PATH = "/api/v1/context/health"
SETTINGS = ("port", "service_names")

# The seed's three tools, as requests relative to the Service's base URL.
INSTRUCTIONS = """Kubernaut Context API (read-only GET requests), relative to the base URL:
- GET /api/v1/context/action-history : Kubernaut workflow execution history (get_action_history).
- GET /api/v1/context/patterns/<signature> : pattern analysis and recommendations for an alert signature (analyze_patterns); URL-encode the signature.
- GET /api/v1/context/discover : the Kubernaut-specific context types available (discover_context_types).
- GET /api/v1/context/health : whether the Context API is up."""
PATHS = ["/api/v1/context/*"]

DESCRIPTION = (
    "Kubernaut Context API: Kubernaut-specific context (workflow action history, "
    "pattern analysis and recommendations, available context types)."
)


class Config:
    port = DEFAULT_PORT
    service_names = list(DEFAULT_SERVICE_NAMES)


def read_settings(text):
    """Parses the settings JSON into (port, service_names) or raises ValueError naming the
    setting at fault."""
    try:
        settings = json.loads(text)
    except ValueError as e:
        raise ValueError(f"settings are not JSON: {e}")
    if not isinstance(settings, dict):
        raise ValueError("settings must be a map")
    unknown = sorted(k for k in settings if k not in SETTINGS)
    if unknown:
        raise ValueError(
            f"unknown setting `{unknown[0]}` (known: {', '.join(SETTINGS)})"
        )
    port = settings.get("port", DEFAULT_PORT)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"`port` must be an integer from 1 to 65535, not {port!r}")
    names = settings.get("service_names", DEFAULT_SERVICE_NAMES)
    if (
        not isinstance(names, list)
        or not names
        or not all(isinstance(n, str) and n for n in names)
    ):
        raise ValueError("`service_names` must be a non-empty list of non-empty strings")
    return port, names


def is_context_api(service):
    if service.name in Config.service_names:
        return True
    labels = dict(service.labels)
    return any(labels.get(key) in Config.service_names for key in NAME_LABELS)


def fragment(service, port):
    base = (
        f"http://{service.name}.{service.namespace}.svc.{service.cluster_domain}:{port}"
    )
    return types.Fragment(
        toolset=TOOLSET,
        backend=BACKEND,
        instance=f"{service.namespace}/{service.name}",
        rank=RANK,
        endpoint=base,
        health=types.HealthProbe(
            port=port, scheme=types.Scheme.HTTP, path=HEALTH_PATH, accepted_statuses=[]
        ),
        config="{}",
        custom=None,
    )


class Detector(exports.Detector):
    def metadata(self) -> types.DetectorInfo:
        return types.DetectorInfo(name=NAME, version=VERSION, backends=[BACKEND])

    def detect(self, service: types.Service) -> types.Detection:
        if service.service_type == "ExternalName" or not is_context_api(service):
            return types.Detection_Unrelated()
        ports = [p for p in service.ports if p.protocol == "TCP"]
        if not any(p.port == Config.port for p in ports):
            have = ", ".join(str(p.port) for p in ports) or "none"
            return types.Detection_Declined(
                f"Kubernaut Context API Service without TCP port {Config.port} (ports: {have})"
            )
        print(f"matched {service.namespace}/{service.name} on port {Config.port}")
        return types.Detection_Matched([fragment(service, Config.port)])


class Setup(exports.Setup):
    def declares(self) -> setup.Emits:
        return setup.Emits(toolsets=[TOOLSET], custom_toolsets=False)

    def configure(self, settings: str) -> None:
        try:
            Config.port, Config.service_names = read_settings(settings)
        except ValueError as e:
            from componentize_py_types import Err

            raise Err(str(e))
        log.log(
            types.Level.DEBUG,
            f"configured: port {Config.port}, services {', '.join(Config.service_names)}",
        )
        print(f"{NAME} {VERSION} (Python) ready: port {Config.port}")


class HttpApis(exports.HttpApis):
    def http_apis(self) -> list:
        return [
            http_apis.HttpApi(
                toolset=TOOLSET,
                description=DESCRIPTION,
                instructions=INSTRUCTIONS,
                paths=PATHS,
            )
        ]
