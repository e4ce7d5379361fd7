#!/usr/bin/env python3
"""Validate a generated HolmesGPT toolset file with HolmesGPT itself (holmesgpt==0.45.0).

Usage: validate.py [--strict] FILE

Loads FILE the way the HolmesGPT server loads CUSTOM_TOOLSET_LOCATION
(holmes.core.toolset_manager.ToolsetManager: built-in toolsets, then the file's
`toolsets:` and `mcp_servers:` merged on top), then checks every entry:

- the entry loaded (an unknown toolset name that is not a valid custom toolset, an
  unknown entry key such as `enable:`, a wrong entry type... all turn the entry into
  HolmesGPT's FAILED placeholder, which we report with its error);
- a built-in's `config` validates against the toolset's pydantic config classes
  (HolmesGPT itself only does that later, in the prerequisite check, which needs the
  backend to answer); for multi-instance toolsets each element of `instances:` is
  validated separately (after HolmesGPT's own globals merge);
- a custom toolset has tools; a `type: http` toolset's config validates against
  HolmesGPT's HttpToolsetConfig (endpoints, host patterns, methods) and names at least one
  endpoint (its single tool is created by the prerequisite check, which needs the backend).

Exit 0 with a one-line summary on stdout; exit 1 with one line per problem on stderr
(naming the toolset and field); exit 2 when the file cannot be read at all.

No network, no kubeconfig: prerequisites (health checks, commands) are NOT run.
`{{ env.VAR }}` references: HolmesGPT substitutes them at load time and fails the
toolset when VAR is unset, so for every VAR referenced in FILE and not set in the
environment, this script sets VAR to the dummy value `dummy-VAR` before loading
(listed in the summary). `--strict` also fails on config keys the config class does
not know (HolmesGPT silently ignores them, which hides typos such as `prometheus_ulr`;
without --strict they are warnings).
"""

import difflib
import os
import re
import sys

ENV_REF = re.compile(r"{{\s*env\.([^}\s]*)\s*}}")


def fail_usage(msg: str) -> "NoReturn":  # type: ignore[name-defined]  # noqa: F821
    print(f"validate.py: {msg}", file=sys.stderr)
    sys.exit(2)


def main(argv: list) -> int:
    args = [a for a in argv[1:] if not a.startswith("--")]
    strict = "--strict" in argv[1:]
    if len(args) != 1:
        fail_usage("usage: validate.py [--strict] FILE")
    path = os.path.abspath(args[0])
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        fail_usage(f"cannot read {path}: {e}")

    # Environment before any holmes import (some modules read env at import time).
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ["CUSTOM_TOOLSET_LOCATION"] = path
    os.environ.setdefault("HOLMES_TOOLSET_STATUS_LOCATION", "/dev/null")
    dummies = []
    for var in sorted(set(ENV_REF.findall(text))):
        if var not in os.environ:
            os.environ[var] = f"dummy-{var}"
            dummies.append(var)

    import logging

    logging.disable(logging.CRITICAL)  # HolmesGPT logs warnings for every failure; we report our own.

    import yaml  # type: ignore
    from pydantic import ValidationError

    from holmes.core.tools import ToolsetStatusEnum
    from holmes.core.toolset_manager import ToolsetManager
    from holmes.plugins.toolsets import load_builtin_toolsets
    from holmes.plugins.toolsets.multi_instance import MultiInstanceToolset, _parse_instances
    from holmes.plugins.toolsets.http.http_toolset import HttpToolset, HttpToolsetConfig

    errors = []
    warnings = []

    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        print(f"{path}: not YAML: {e}", file=sys.stderr)
        return 1
    if not isinstance(raw, dict):
        print(f"{path}: top level must be a map (toolsets:, mcp_servers:)", file=sys.stderr)
        return 1
    toolsets_raw = raw.get("toolsets") or {}
    if isinstance(toolsets_raw, list):
        print(f"{path}: toolsets: is a list (HolmesGPT's rejected old format); must be a map", file=sys.stderr)
        return 1
    if not isinstance(toolsets_raw, dict):
        print(f"{path}: toolsets: must be a map of name -> entry", file=sys.stderr)
        return 1
    mcp_raw = raw.get("mcp_servers") or {}
    if not isinstance(mcp_raw, dict):
        print(f"{path}: mcp_servers: must be a map of name -> entry", file=sys.stderr)
        return 1
    for name, entry in list(toolsets_raw.items()) + list(mcp_raw.items()):
        if not isinstance(entry, dict):
            errors.append(f"toolset {name}: entry must be a map, got {type(entry).__name__}")
    if errors:
        for e in errors:
            print(e, file=sys.stderr)
        return 1

    builtins = {t.name: t for t in load_builtin_toolsets()}

    # 1. The server's loader, entry by entry (what load_custom_toolsets does).
    manager = ToolsetManager()
    try:
        loaded = manager._load_toolsets_from_paths([path], list(builtins))
    except Exception as e:  # the server fails to start on these
        print(f"{path}: HolmesGPT cannot load the file: {e}", file=sys.stderr)
        return 1
    loaded_by_name = {t.name: t for t in loaded}

    # 2. The whole merge, as at server start (without prerequisite checks).
    try:
        manager._list_all_toolsets(check_prerequisites=False)
    except Exception as e:
        errors.append(f"{path}: HolmesGPT failed merging the file onto its built-ins: {e}")

    n_builtin = n_custom = n_instances = 0
    for name, entry in toolsets_raw.items():
        t = loaded_by_name.get(name)
        if t is None:
            errors.append(f"toolset {name}: not loaded by HolmesGPT (removed or renamed toolset?)")
            continue
        if t.status == ToolsetStatusEnum.FAILED:
            detail = " | ".join(
                line.strip() for line in (t.error or "").splitlines()
                if line.strip() and "errors.pydantic.dev" not in line
            )
            if name in builtins:
                errors.append(f"toolset {name} (built-in): failed to load: {detail}")
            else:
                close = difflib.get_close_matches(name, list(builtins), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                errors.append(
                    f"toolset {name}: unknown toolset name{hint}: not a HolmesGPT built-in, "
                    f"and as a custom toolset it fails: {detail}"
                )
            continue
        if name not in builtins and isinstance(t, HttpToolset):
            n_custom += 1
            try:
                http_config = HttpToolsetConfig(**(entry.get("config") or {}))
            except ValidationError as e:
                errors.append(f"toolset {name} (type http): invalid config: {e.errors()}")
                continue
            if not http_config.endpoints:
                errors.append(f"toolset {name} (type http): no endpoints")
            unknown = sorted(set(entry.get("config") or {}) - set(HttpToolsetConfig.model_fields))
            if unknown:
                (errors if strict else warnings).append(
                    f"toolset {name} (type http): config keys unknown to HttpToolsetConfig: {unknown}"
                )
            continue
        if name not in builtins:
            n_custom += 1
            if not t.tools:
                errors.append(f"toolset {name}: custom toolset has no tools")
            continue
        n_builtin += 1
        config = t.config if hasattr(t, "config") else entry.get("config")
        if entry.get("enabled") is False:
            continue
        builtin = builtins[name]
        classes = list(getattr(builtin, "config_classes", None) or [])
        if not classes:
            if config:
                warnings.append(f"toolset {name}: has no config class; config ignored by HolmesGPT")
            continue
        if isinstance(builtin, MultiInstanceToolset):
            try:
                instances = _parse_instances(config or {})
            except Exception as e:
                errors.append(f"toolset {name}: config.instances: {e}")
                continue
            if isinstance((config or {}).get("instances"), list):
                n_instances += len(instances)
            labelled = [
                (f"config.instances[{i}] ({iname})" if len(instances) > 1 or (config or {}).get("instances") else "config", flat)
                for i, (iname, flat) in enumerate(instances)
            ]
            child_cls = builtin._child_cls
        else:
            labelled = [("config", config or {})]
            child_cls = type(builtin)
        for label, flat in labelled:
            if not flat and all(c.has_required_fields() for c in classes if hasattr(c, "has_required_fields")):
                errors.append(f"toolset {name}: {label}: missing (required by {classes[0].__name__})")
                continue
            candidates = classes
            picker = getattr(child_cls, "determine_prometheus_class", None)
            if picker is not None:
                try:
                    candidates = [picker(child_cls(), flat, entry.get("subtype"))]
                except Exception as e:
                    errors.append(f"toolset {name}: {label}: {e}")
                    continue
            problems = []
            per_class = []
            matched = None
            for cls in candidates:
                mine = []
                try:
                    cls(**flat)
                    matched = cls
                    break
                except ValidationError as e:
                    for err in e.errors():
                        loc = ".".join(str(x) for x in err.get("loc", ())) or "(config)"
                        mine.append(f"{loc}: {err.get('msg')}")
                except Exception as e:
                    mine.append(str(e))
                per_class.append((cls.__name__, mine))
                problems.extend(mine)
            if matched is None:
                # Report the variant that came closest (fewest problems).
                best = min(per_class, key=lambda kv: len(kv[1])) if per_class else ("?", problems)
                errors.append(
                    f"toolset {name}: {label} does not validate as {best[0]}"
                    + (f" (nor {', '.join(c.__name__ for c in candidates if c.__name__ != best[0])})" if len(candidates) > 1 else "")
                    + ": " + "; ".join(best[1])
                )
                continue
            known = set(matched.model_fields) | set(getattr(matched, "_deprecated_mappings", {}) or {})
            unknown = sorted(k for k in flat if k not in known)
            if unknown:
                msg = f"toolset {name}: {label}: keys unknown to {matched.__name__} (HolmesGPT ignores them): {', '.join(unknown)}"
                (errors if strict else warnings).append(msg)

    for name in mcp_raw:
        t = loaded_by_name.get(name)
        if t is None or t.status == ToolsetStatusEnum.FAILED:
            errors.append(f"mcp_servers {name}: failed to load: {getattr(t, 'error', 'not loaded')}")

    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if errors:
        for e in errors:
            print(e, file=sys.stderr)
        print(f"{path}: {len(errors)} problem(s)", file=sys.stderr)
        return 1
    dummy_note = f"; dummy env: {', '.join(dummies)}" if dummies else ""
    print(
        f"OK {path}: {len(toolsets_raw)} toolsets ({n_builtin} built-in, {n_custom} custom, "
        f"{n_instances} instances), {len(mcp_raw)} mcp servers load in holmesgpt 0.45.0{dummy_note}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
