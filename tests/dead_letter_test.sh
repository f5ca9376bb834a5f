#!/usr/bin/env bash
# No notification is lost on the Argo path: a workflow-shaped run of the
# real CLI against moto (S3 + SQS), driven by the WorkflowTemplate itself.
#
# tests/dead_letter_workflow.py reads deploy/argo/workflowtemplate-extract-
# single.yaml and does what Argo would: runs the entrypoint container's
# command line (parameters substituted, retried while the template's
# retryStrategy.expression says so), sets {{workflow.status}}, evaluates the
# onExit handler's `when` and runs its container's command line
# (`kerchunk-nos dead-letter --queue URL MESSAGE`). Checks:
#   * extract_single on a message naming a corrupt file exits 1, is not
#     retried, and the exit handler leaves exactly the original body in the
#     dead-letter queue;
#   * a run that succeeds writes its reference set and sends nothing;
#   * the verb itself: bodies arrive byte for byte (unicode, quotes,
#     newlines), empty body and unknown queue exit 1, an unreachable
#     endpoint exits 3.
#
# Env: KERCHUNK_NOS_BIN (default target/debug/kerchunk-nos, rebuilt unless
# set), KERCHUNK_NOS_PYTHON / VENV (default .venv).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/tests/lib.sh"
oracle_python dead_letter_test
test_binary dead_letter_test
moto_session "$PY"

export AWS_ENDPOINT_URL=$MOTO_ENDPOINT
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL_S3 AWS_ENDPOINT_URL_SQS || true

rc=0
"$PY" "$ROOT/tests/dead_letter_workflow.py" --bin "$BIN" --root "$ROOT" --port "$MOTO_PORT" || rc=$?
[ "$rc" -eq 0 ] || tail -n 20 "$WORK/moto.log" >&2
exit "$rc"
