# Shared settings and helpers for deploy_rdk.sh and deploy_model.sh (sourced, not run).
#
# RDK_HOST      user@board (required); "local" targets RDK_DIR on this machine without ssh (make demo
#               uses it: the same rsync path, with the agent's models dir on this disk)
# RDK_PORT      ssh port (default 22)
# RDK_DIR       install dir on the board (default /opt/rdk_agent); absolute, no spaces
# RDK_SSH_OPTS  extra ssh options, split on spaces (e.g. "-i ~/.ssh/rdk -o UserKnownHostsFile=...")
# RDK_PYTHON    the board's python (default python3), used to create the venv and run the helpers

RDK_PORT=${RDK_PORT:-22}
RDK_DIR=${RDK_DIR:-/opt/rdk_agent}
RDK_SSH_OPTS=${RDK_SSH_OPTS:-}
RDK_PYTHON=${RDK_PYTHON:-python3}
deploy_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(dirname "$deploy_dir")
board_scripts=$RDK_DIR/app/deploy/board
[ "${RDK_HOST:-}" = local ] && board_scripts=$deploy_dir/board

die() {
    echo "$prog: error: $*" >&2
    exit 1
}

check_settings() {
    [ -n "${RDK_HOST:-}" ] || die "RDK_HOST is not set. Usage: $usage"
    [[ $RDK_PORT =~ ^[0-9]+$ ]] || die "RDK_PORT must be a port number, got '$RDK_PORT'"
    [[ $RDK_DIR =~ ^/[A-Za-z0-9._/+-]+$ ]] || die "RDK_DIR must be an absolute path without spaces or quotes, got '$RDK_DIR'"
    [[ $RDK_PYTHON =~ ^[A-Za-z0-9._/+-]+$ ]] || die "RDK_PYTHON must be a command name or path, got '$RDK_PYTHON'"
    # shellcheck disable=SC2206  # RDK_SSH_OPTS is meant to be split into words
    ssh_cmd=(ssh -p "$RDK_PORT" -o BatchMode=yes -o ConnectTimeout=10 $RDK_SSH_OPTS)
    rsync_rsh="ssh -p $RDK_PORT -o BatchMode=yes -o ConnectTimeout=10 $RDK_SSH_OPTS"
}

# remote CMD...: run a command line on the board (the arguments are joined by ssh, as usual).
remote() {
    if [ "$RDK_HOST" = local ]; then
        sh -c "$*"
    else
        "${ssh_cmd[@]}" "$RDK_HOST" "$@"
    fi
}

# on_board PATH: PATH as an rsync destination on the board.
on_board() {
    if [ "$RDK_HOST" = local ]; then echo "$1"; else echo "$RDK_HOST:$1"; fi
}

# Fail clearly when the board cannot be reached or lacks what the deployment needs.
# $1: "install" (may create RDK_DIR) or "installed" (the agent must be deployed already).
preflight() {
    local out rc
    out=$(remote "sh -s" 2>&1 <<EOF
command -v $RDK_PYTHON >/dev/null 2>&1 || exit 3
$RDK_PYTHON -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 4)' || exit 4
command -v rsync >/dev/null 2>&1 || exit 5
if [ "$1" = install ]; then
    mkdir -p "$RDK_DIR/app" 2>/dev/null || { sudo -n install -d -o "\$(id -un)" -g "\$(id -gn)" "$RDK_DIR" && mkdir -p "$RDK_DIR/app"; } || exit 6
else
    [ "$RDK_HOST" = local ] || [ -x "$RDK_DIR/venv/bin/python" ] || exit 7
    [ -d "$RDK_DIR/models" ] && [ -f "$board_scripts/wait_model.py" ] || exit 7
fi
EOF
    ) && return 0 || rc=$?
    case $rc in
        255) die "cannot reach $RDK_HOST over ssh (port $RDK_PORT): ${out:-no output}" ;;
        3) die "no '$RDK_PYTHON' on $RDK_HOST; install Python 3.10+ (Ubuntu 22.04: sudo apt install python3 python3-venv)" ;;
        4) die "'$RDK_PYTHON' on $RDK_HOST is older than 3.10 ($(remote "$RDK_PYTHON -V" 2>&1))" ;;
        5) die "rsync is missing on $RDK_HOST (sudo apt install rsync)" ;;
        6) die "cannot create $RDK_DIR on $RDK_HOST: create it once (sudo mkdir -p $RDK_DIR && sudo chown \$USER $RDK_DIR) or allow passwordless sudo" ;;
        7) die "no agent installed in $RDK_DIR on $RDK_HOST; run make deploy-rdk first" ;;
        *) die "preflight on $RDK_HOST failed with status $rc: $out" ;;
    esac
}
