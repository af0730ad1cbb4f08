#!/usr/bin/env bash
# make deploy-model: check a model's card here, rsync it to the board's models dir, and wait for the
# board's verdict: promoted, waiting (why) or refused (why), with the champion's and the challenger's
# golden-set accuracy and macro-F1 side by side (see deploy/README.md).
#
# Settings (environment): MODEL (required), RDK_HOST RDK_PORT RDK_DIR RDK_SSH_OPTS RDK_PYTHON (lib.sh),
#   PYTHON               the desktop python with onnxruntime and shared_schema (default .venv/bin/python)
#   RDK_MODEL_TIMEOUT    seconds to wait for the board's verdict (default 120; scoring a large golden
#                        set on the board takes a while)
#   RDK_AGENT_TOKEN      the agent's token (default: read on the board from etc/agent.env or data/token)
#
# Exit status: 0 promoted or waiting (an agent without the model registry: active), 1 usage/ssh/rsync
# error, 2 refused here (card), 3 refused by the board (unfit, or worse on its golden set), 4 no verdict
# in time (the message names what is pending), 5 the agent refused the token.
set -euo pipefail
prog=deploy-model
usage="make deploy-model RDK_HOST=user@board MODEL=path/to/model.onnx [RDK_PORT=22] [RDK_DIR=/opt/rdk_agent]"
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RDK_MODEL_TIMEOUT=${RDK_MODEL_TIMEOUT:-120}
if [ -z "${PYTHON:-}" ]; then
    PYTHON=python3
    [ -x "$repo_root/.venv/bin/python" ] && PYTHON=$repo_root/.venv/bin/python
fi

[ -n "${MODEL:-}" ] || die "MODEL is not set. Usage: $usage"
[ -f "$MODEL" ] || die "MODEL=$MODEL does not exist or is not a file"
check_settings
[[ $RDK_MODEL_TIMEOUT =~ ^[0-9]+$ ]] || die "RDK_MODEL_TIMEOUT must be whole seconds, got '$RDK_MODEL_TIMEOUT'"

rc=0
sha=$(PYTHONPATH="$repo_root${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" "$deploy_dir/check_model.py" "$MODEL") || rc=$?
[ "$rc" = 0 ] || exit 2

echo "$prog: $MODEL (sha256 $sha) -> $RDK_HOST:$RDK_DIR/models/model.onnx"
preflight installed

# rsync writes a temporary dot-file next to the target and renames it into place, so the agent
# never sees a half-written model.onnx; --checksum skips the copy when the board has the same bytes.
changes=$(rsync --checksum --chmod=F644 --itemize-changes -e "$rsync_rsh" \
    "$MODEL" "$(on_board "$RDK_DIR/models/model.onnx")") || die "rsync of $MODEL to $RDK_HOST failed"
if [ -n "$changes" ]; then
    echo "  model:    uploaded ($changes)"
else
    echo "  model:    the board already has these bytes (nothing transferred)"
fi

rc=0
remote "$RDK_PYTHON -B $board_scripts/wait_model.py --dir $RDK_DIR --sha256 $sha --timeout $RDK_MODEL_TIMEOUT" \
    <<<"${RDK_AGENT_TOKEN:-}" || rc=$?
case $rc in
    0) echo "$prog: done" ;;
    255) die "lost the ssh connection to $RDK_HOST while waiting for the agent" ;;
    *) exit "$rc" ;;
esac
