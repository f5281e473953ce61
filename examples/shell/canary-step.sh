#!/usr/bin/env bash
# A deploy job's canary step in plain shell: ask canary-gate until it decides,
# then promote or roll back by its exit code. Copy it into your pipeline and set
# the variables below; the promote and rollback commands are yours
# (kubectl, helm, a load-balancer API ...).
#
#   CANARY_GATE_SERVER   canary-gate's URL, e.g. http://canary-gate:8080   (required)
#   DEPLOYMENT           the rollout's name, e.g. checkout-1402              (required)
#   CANARY_STARTED_AT    when the canary began taking traffic (RFC 3339 or unix seconds) (required)
#   SERVICE              value of the rule set's $service                     (required)
#   PROMOTE_CMD          command that promotes the canary                      (required)
#   ROLLBACK_CMD         command that rolls the canary back                    (required)
#   RULES                rule set, default http
#   CANARY / BASELINE    label matchers, default track=canary / track=baseline
#   TIMEOUT / EVERY      how long to wait and how often to ask, default 30m / 30s
#   TOKEN_FILE           bearer token file, if the server wants one
#   ON_UNDECIDED         what to do when canary-gate could not decide (inconclusive
#                        or error): rollback (default, fail-safe) or fail (stop the job)
set -uo pipefail

: "${CANARY_GATE_SERVER:?set CANARY_GATE_SERVER}" "${DEPLOYMENT:?set DEPLOYMENT}"
: "${CANARY_STARTED_AT:?set CANARY_STARTED_AT}" "${SERVICE:?set SERVICE}"
: "${PROMOTE_CMD:?set PROMOTE_CMD}" "${ROLLBACK_CMD:?set ROLLBACK_CMD}"

args=(wait --server "$CANARY_GATE_SERVER" --rules "${RULES:-http}" --deployment "$DEPLOYMENT"
      --canary "${CANARY:-track=canary}" --baseline "${BASELINE:-track=baseline}"
      --start "$CANARY_STARTED_AT" --var "service=$SERVICE"
      --timeout "${TIMEOUT:-30m}" --every "${EVERY:-30s}" --output json)
if [ -n "${TOKEN_FILE:-}" ]; then args+=(--token-file "$TOKEN_FILE"); fi

canary-gate "${args[@]}" > canary-verdict.json
code=$?

case "$code" in
  0) echo "canary-gate: promote"; bash -c "$PROMOTE_CMD" ;;
  1) echo "canary-gate: rollback"; bash -c "$ROLLBACK_CMD"; exit 1 ;;
  *)
    what=$([ "$code" = 2 ] && echo "inconclusive" || echo "error (exit $code)")
    echo "canary-gate: $what"
    if [ "${ON_UNDECIDED:-rollback}" = "rollback" ]; then bash -c "$ROLLBACK_CMD"; fi
    exit "$code" ;;
esac
