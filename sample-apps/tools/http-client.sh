#!/usr/bin/env bash
# Sends one JSON order per interval to the HTTP service behind its Envoy sidecar and prints what it sent
# and what came back, one line each, for ./meshcrypt demo to show.
# Environment: HTTP_URL (required, e.g. http://127.0.0.1:19081), INTERVAL_MS (default 1000),
# COUNT (requests, 0 = until SIGTERM; default 0).
set -euo pipefail
: "${HTTP_URL:?HTTP_URL is not set}"
interval_ms=${INTERVAL_MS:-1000}
count=${COUNT:-0}
[[ $interval_ms =~ ^[0-9]+$ && $count =~ ^[0-9]+$ ]] || { echo "http-client: INTERVAL_MS and COUNT must be numbers" >&2; exit 2; }
trap 'exit 0' TERM INT
sleep_s=$(printf '%d.%03d' $((interval_ms / 1000)) $((interval_ms % 1000)))

for ((seq = 1; count == 0 || seq <= count; seq++)); do
  body=$(printf '{"order":%d,"card":{"number":"4111-1111-1111-%04d","cvv":"%03d"},"note":"ssn 123-45-%04d"}' \
    "$seq" $((seq % 10000)) $((seq % 1000)) $((seq % 10000)))
  echo "sent POST /orders $body"
  if answer=$(curl -sS --max-time 10 -H 'content-type: application/json' --data-binary "$body" \
      -w '\n%{http_code}' "$HTTP_URL/orders" 2>&1); then
    echo "got ${answer##*$'\n'} ${answer%$'\n'*}"
  else
    echo "got error ${answer//$'\n'/ }"
  fi
  sleep "$sleep_s" & wait $!
done
