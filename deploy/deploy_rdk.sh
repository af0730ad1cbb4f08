#!/usr/bin/env bash
# make deploy-rdk: build the agent's wheel here, then install or update it on a board over ssh + rsync
# (see deploy/README.md).
#
# Settings (environment): RDK_HOST RDK_PORT RDK_DIR RDK_SSH_OPTS RDK_PYTHON (lib.sh), and
#   PYTHON              the desktop python that builds the wheel (default .venv/bin/python, else python3)
#   RDK_INIT            auto (default: systemd when the board runs it), systemd or supervisor
#   RDK_SERVICE         systemd unit name (default rdk-agent)
#   RDK_VENV_ARGS       extra `python3 -m venv` arguments (e.g. --system-site-packages)
#   RDK_PIP_ARGS        extra `pip install` arguments (e.g. --no-index --find-links /path/wheels)
#   RDK_HEALTH_TIMEOUT  seconds to wait for /api/v1/healthz (default 90)
#   RDK_AGENT_*         every one set here is written to the board's RDK_DIR/etc/agent.env
#                       (RDK_AGENT_PORT, RDK_AGENT_HOST, RDK_AGENT_CAMERA, RDK_AGENT_TOKEN, ...)
set -euo pipefail
prog=deploy-rdk
usage="make deploy-rdk RDK_HOST=user@board [RDK_PORT=22] [RDK_DIR=/opt/rdk_agent]"
# shellcheck source=deploy/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RDK_INIT=${RDK_INIT:-auto}
RDK_SERVICE=${RDK_SERVICE:-rdk-agent}
RDK_VENV_ARGS=${RDK_VENV_ARGS:-}
RDK_PIP_ARGS=${RDK_PIP_ARGS:-}
RDK_HEALTH_TIMEOUT=${RDK_HEALTH_TIMEOUT:-90}
if [ -z "${PYTHON:-}" ]; then
    PYTHON=python3
    [ -x "$repo_root/.venv/bin/python" ] && PYTHON=$repo_root/.venv/bin/python
fi

check_settings
[[ $RDK_INIT =~ ^(auto|systemd|supervisor)$ ]] || die "RDK_INIT must be auto, systemd or supervisor, got '$RDK_INIT'"
[[ $RDK_SERVICE =~ ^[A-Za-z0-9_.@-]+$ ]] || die "RDK_SERVICE must be a unit name, got '$RDK_SERVICE'"
[[ $RDK_HEALTH_TIMEOUT =~ ^[0-9]+$ ]] || die "RDK_HEALTH_TIMEOUT must be whole seconds, got '$RDK_HEALTH_TIMEOUT'"

echo "$prog: $RDK_HOST:$RDK_DIR (ssh port $RDK_PORT)"
preflight install

# What the board gets, staged here: the agent's wheel (rdk_agent + shared_schema, built from
# packaging/agent; the same sources give the same bytes), the lock its dependencies are pinned to, and
# the board-side scripts. RDK_DIR/app becomes an exact mirror of it, compared by checksum, so an
# unchanged checkout transfers nothing. data/ and models/ are siblings of app/, out of reach of --delete.
stage=$(mktemp -d "${TMPDIR:-/tmp}/deploy-rdk.XXXXXX")
trap 'rm -rf "$stage"' EXIT
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$stage/wheels" "$repo_root/packaging/agent" >/dev/null ||
    die "building the agent wheel from $repo_root/packaging/agent with $PYTHON failed (output above)"
wheel=$(cd "$stage/wheels" && echo *.whl)
echo "  wheel:    $wheel (from packaging/agent)"
mkdir -p "$stage/requirements" "$stage/deploy"
cp -p "$repo_root/requirements/agent.txt" "$stage/requirements/"
cp -Rp "$deploy_dir/board" "$stage/deploy/"
changes=$(
    rsync --recursive --links --perms --checksum --delete --delete-excluded --itemize-changes \
        -e "$rsync_rsh" --exclude='__pycache__/' --exclude='*.py[co]' \
        "$stage/" "$(on_board "$RDK_DIR/app/")"
) || die "rsync to $RDK_HOST:$RDK_DIR/app failed"
if [ -n "$changes" ]; then
    echo "  code:     $(grep -c . <<<"$changes") change(s) in $RDK_DIR/app:"
    sed 's/^/    /' <<<"$changes"
else
    echo "  code:     unchanged (nothing transferred)"
fi

settings=$(python3 -c 'import json, os; print(json.dumps({k: v for k, v in os.environ.items() if k.startswith("RDK_AGENT_")}))')
install_cmd="$RDK_PYTHON -B $board_scripts/board_install.py install --dir $RDK_DIR --init $RDK_INIT"
install_cmd+=" --service $RDK_SERVICE --health-timeout $RDK_HEALTH_TIMEOUT --settings-stdin"
install_cmd+=" --venv-args=$(printf %q "$RDK_VENV_ARGS") --pip-args=$(printf %q "$RDK_PIP_ARGS")"
remote "$install_cmd" <<<"$settings" || die "installing on $RDK_HOST failed (see above)"
echo "$prog: done"
