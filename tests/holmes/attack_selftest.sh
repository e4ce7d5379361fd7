#!/usr/bin/env bash
# Proves attack.py can fail: every samples/attack/vuln-*.yaml must be flagged (exit 1, each
# expected finding on stdout) and samples/attack/good-*.yaml must pass (exit 0, with tools
# invoked). Usage: tests/holmes/attack_selftest.sh [VENV_DIR]   (venv created by setup.sh)
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="$("$here/setup.sh" "$@")" || { echo "attack_selftest: setup failed" >&2; exit 1; }
samples="$here/samples/attack"
export LITELLM_LOCAL_MODEL_COST_MAP=True

trusted=(
    --trusted prometheus.monitoring.svc.cluster.local:9090
    --trusted grafana.monitoring.svc.cluster.local:80
    --trusted alertmanager.monitoring.svc.cluster.local:9093
    --trusted jaeger-query.tracing.svc.cluster.local:16686
    --allow-prereq "curl --version"
)

# sample -> findings its output must contain, separated by '|'
declare -A expect=(
    [vuln-curl-quoting.yaml]="INJECTION toolset=alertmanager/alerts tool=alertmanager_list_alerts param=filter value=\"frontend;touch PWNED_0;\"|INJECTION toolset=jaeger/traces tool=jaeger_find_traces param=service value=\"\$(touch PWNED_1)\"|CURLGLOB toolset=jaeger/traces"
    [vuln-grafana-attacker.yaml]="LEAK toolset=grafana/dashboards tool=(prerequisites) destination=attacker.example.com:443 detail=GRAFANA_API_KEY sent"
    [vuln-eck-tenant.yaml]="LEAK toolset=elasticsearch/data tool=(prerequisites) destination=es-es-http.team-a.svc.cluster.local:9200 detail=ELASTICSEARCH_PASSWORD sent"
    [vuln-env-in-url.yaml]="LEAK toolset=prometheus/metrics tool=(prerequisites) destination=prometheus.monitoring.svc.cluster.local:9090 detail=OPENAI_API_KEY sent"
    [vuln-bash.yaml]="BUILTIN toolset=bash"
    [vuln-builtin.yaml]="BUILTIN toolset=helm/core"
    [vuln-prereq.yaml]="PREREQ toolset=kubernetes/core detail=prerequisites ran a command not allowed: 'touch /tmp/holmes-attack-prereq-core'|PREREQ toolset=evil/tools detail=declared prerequisites command not allowed: 'id > /dev/null'|LEAK toolset=evil/tools tool=evil_fetch param=(benign) destination=attacker.example.com:80 detail=GRAFANA_API_KEY in curl argv"
    [vuln-http-wildcard.yaml]="LEAK toolset=grafana/http tool=grafana_http_request param=url|destination=attacker.example.com:80 detail=GRAFANA_API_KEY sent|destination=evil.team-a.svc.cluster.local:9200 detail=GRAFANA_API_KEY sent"
    [vuln-description-env.yaml]="EXPOSED toolset=shop/notes detail=ANTHROPIC_API_KEY canary in a description"
)

failures=0
for f in "$samples"/vuln-*.yaml; do
    name="$(basename "$f")"
    want="${expect[$name]:-}"
    if [ -z "$want" ]; then
        echo "FAIL $name: no expectation in attack_selftest.sh" >&2; failures=$((failures + 1)); continue
    fi
    out="$("$py" "$here/attack.py" "$f" "${trusted[@]}" 2>/dev/null)"; rc=$?
    if [ "$rc" -ne 1 ]; then
        echo "FAIL $name: exit $rc, expected 1" >&2; echo "$out" | tail -5 | sed 's/^/    /' >&2
        failures=$((failures + 1)); continue
    fi
    missing=0
    IFS='|' read -r -a wants <<<"$want"
    for w in "${wants[@]}"; do
        if [[ "$out" != *"$w"* ]]; then
            echo "FAIL $name: output lacks: $w" >&2; missing=1
        fi
    done
    if [ "$missing" -ne 0 ]; then
        echo "$out" | head -20 | sed 's/^/    /' >&2; failures=$((failures + 1))
    else
        echo "ok   $name flagged: $(echo "$out" | tail -1 | cut -c1-60)..."
    fi
done
for f in "$samples"/good-*.yaml; do
    name="$(basename "$f")"
    if out="$("$py" "$here/attack.py" "$f" "${trusted[@]}" 2>/dev/null)" && [[ "$out" == "OK no findings"* ]] \
        && ! [[ "$out" =~ invocations\ 0\; ]]; then
        echo "ok   $name passes: $(echo "$out" | cut -c1-200)"
    else
        echo "FAIL $name not clean:" >&2; echo "$out" | head -20 | sed 's/^/    /' >&2; failures=$((failures + 1))
    fi
done

if [ "$failures" -ne 0 ]; then
    echo "attack_selftest: $failures failure(s)" >&2
    exit 1
fi
echo "attack_selftest: every vulnerable sample flagged, safe sample clean"
