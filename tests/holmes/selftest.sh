#!/usr/bin/env bash
# Proves validate.py can fail: every samples/bad-*.yaml must be rejected (exit 1, the
# expected message on stderr) and every samples/good-*.yaml accepted (exit 0); and the
# HolmesGPT facts hard-coded in host/core match the installed package (check_consts.py).
# Usage: tests/holmes/selftest.sh [VENV_DIR]   (venv created by setup.sh when missing)
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="$("$here/setup.sh" "$@")" || { echo "selftest: setup failed" >&2; exit 1; }
samples="$here/samples"

# bad sample -> text its rejection must contain
declare -A expect=(
    [bad-unknown-toolset.yaml]="toolset prometheus/metricz: unknown toolset name (did you mean prometheus/metrics?)"
    [bad-entry-key.yaml]="toolset prometheus/metrics (built-in): failed to load"
    [bad-config-type.yaml]="toolset elasticsearch/data: config does not validate as ElasticsearchConfig: verify_ssl"
    [bad-instance-config.yaml]="toolset grafana/loki: config.instances[1] (team-loki) does not validate"
    [bad-missing-required.yaml]="toolset grafana/dashboards: config does not validate as GrafanaDashboardConfig: api_url: Field required"
    [bad-old-format.yaml]="old format"
    [bad-custom-no-tools.yaml]="toolset jaeger/traces: unknown toolset name"
)

failures=0
for f in "$samples"/bad-*.yaml; do
    name="$(basename "$f")"
    want="${expect[$name]:-}"
    if [ -z "$want" ]; then
        echo "FAIL $name: no expectation in selftest.sh" >&2; failures=$((failures + 1)); continue
    fi
    err="$("$py" "$here/validate.py" "$f" 2>&1 >/dev/null)"; rc=$?
    if [ "$rc" -ne 1 ]; then
        echo "FAIL $name: exit $rc, expected 1" >&2; failures=$((failures + 1))
    elif [[ "$err" != *"$want"* ]]; then
        echo "FAIL $name: stderr lacks: $want" >&2; echo "$err" | sed 's/^/    /' >&2; failures=$((failures + 1))
    else
        echo "ok   $name rejected"
    fi
done
for f in "$samples"/good-*.yaml; do
    name="$(basename "$f")"
    if out="$("$py" "$here/validate.py" "$f" 2>&1)"; then
        echo "ok   $name accepted: $out"
    else
        echo "FAIL $name rejected:" >&2; echo "$out" | sed 's/^/    /' >&2; failures=$((failures + 1))
    fi
done

if out="$("$py" "$here/check_consts.py" 2>&1)"; then
    echo "ok   $out"
else
    echo "FAIL check_consts.py:" >&2; echo "$out" | sed 's/^/    /' >&2; failures=$((failures + 1))
fi

if [ "$failures" -ne 0 ]; then
    echo "selftest: $failures failure(s)" >&2
    exit 1
fi
echo "selftest: all samples behave"
