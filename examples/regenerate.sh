#!/usr/bin/env bash
# examples/regenerate.sh - rewrite every generated file that is checked in:
# examples/*/haproxy.cfg, examples/multinode/haproxy-node*.cfg,
# examples/full/haproxy-snippet.cfg and the rules part
# of haproxy/frontend-rules.cfg. tests/e2e/examples.sh fails when they drift.
set -euo pipefail
cd "$(dirname "$0")/.."
for d in examples/*/; do
    [ -f "$d/synroute.yaml" ] || continue
    bin/synroute haproxy --portable "${d}synroute.yaml" -o "${d}haproxy.cfg"
done
for n in examples/multinode/node*.yaml; do
    bin/synroute haproxy --portable "$n" -o "examples/multinode/haproxy-$(basename "$n" .yaml).cfg"
done
bin/synroute haproxy --portable examples/full/synroute.yaml --snippet -o examples/full/haproxy-snippet.cfg
tpl=haproxy/frontend-rules.cfg
{ sed -n '/^    # 0\. Client-supplied/q;p' "$tpl"
  bin/synroute haproxy --snippet examples/monolith/synroute.yaml | sed -n '/^    # 0\. Client-supplied/,/^    use_backend/p'
} > "$tpl.new"
mv "$tpl.new" "$tpl"
git status --short examples haproxy
