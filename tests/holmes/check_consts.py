#!/usr/bin/env python3
"""Checks that the HolmesGPT facts hard-coded in host/core/src/assemble.rs
(BUILTIN_TOOLSETS, MULTI_INSTANCE_TOOLSETS) match the installed holmesgpt.
Usage: check_consts.py   (run with the venv python from setup.sh)"""

import os
import re
import sys

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
import logging

logging.disable(logging.CRITICAL)

from holmes.plugins.toolsets import load_builtin_toolsets  # noqa: E402
from holmes.plugins.toolsets.multi_instance import MultiInstanceToolset  # noqa: E402

src = os.path.join(os.path.dirname(__file__), "..", "..", "host", "core", "src", "assemble.rs")
text = open(src, encoding="utf-8").read()


def const(name):
    m = re.search(r"pub const " + name + r": &\[&str\] = &\[(.*?)\];", text, re.S)
    if not m:
        sys.exit(f"check_consts: {name} not found in {src}")
    return set(re.findall(r'"([^"]+)"', m.group(1)))


toolsets = load_builtin_toolsets()
real_all = {t.name for t in toolsets}
real_multi = {t.name for t in toolsets if isinstance(t, MultiInstanceToolset)}
bad = 0
for name, ours, real in [
    ("BUILTIN_TOOLSETS", const("BUILTIN_TOOLSETS"), real_all),
    ("MULTI_INSTANCE_TOOLSETS", const("MULTI_INSTANCE_TOOLSETS"), real_multi),
]:
    if ours != real:
        bad += 1
        print(f"{name} differs from holmesgpt: missing {sorted(real - ours)}, extra {sorted(ours - real)}", file=sys.stderr)
if bad:
    sys.exit(1)
print(f"OK constants match holmesgpt ({len(real_all)} built-ins, {len(real_multi)} multi-instance)")
