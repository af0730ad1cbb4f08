#!/usr/bin/env bash
# Keep the RDK agent running on a board without systemd (containers, test sandboxes).
#
#   rdk-agent-run.sh RDK_DIR
#
# The same contract as the systemd unit: settings from RDK_DIR/etc/agent.env, the agent installed
# in the venv RDK_DIR/venv (from its wheel), data and models in RDK_DIR/data and RDK_DIR/models.
# Restarts the agent when it exits with a non-zero status (like Restart=on-failure), with a
# back-off of 1 s doubling up to 30 s, reset after a minute of uptime. SIGTERM or SIGINT stops
# the agent and then the supervisor. board_install.py starts it with setsid (its own process
# group), and writes nothing itself: this script keeps run/supervisor.pid and run/agent.pid.
set -u

rdk_dir=${1:?usage: rdk-agent-run.sh RDK_DIR}
run_dir=$rdk_dir/run

set -a
# shellcheck disable=SC1091
. "$rdk_dir/etc/agent.env"
set +a
export PYTHONPYCACHEPREFIX=$rdk_dir/cache/pycache PYTHONUNBUFFERED=1
cd "$rdk_dir" || exit 1

child=""
stopping=0
on_signal() {
    stopping=1
    if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null; fi
}
trap on_signal TERM INT

echo $$ >"$run_dir/supervisor.pid"
log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') rdk-agent-run: $*"; }

delay=1
while [ "$stopping" = 0 ]; do
    started=$(date +%s)
    log "starting agent"
    "$rdk_dir/venv/bin/python" -m rdk_agent --data-dir "$rdk_dir/data" --models-dir "$rdk_dir/models" &
    child=$!
    echo "$child" >"$run_dir/agent.pid"
    wait "$child"
    rc=$?
    if [ "$stopping" = 1 ]; then
        wait "$child" 2>/dev/null  # the first wait returned early because of the signal
        log "stopped"
        break
    fi
    if [ "$rc" = 0 ]; then
        log "agent exited cleanly; not restarting"
        break
    fi
    if [ $(($(date +%s) - started)) -ge 60 ]; then delay=1; fi
    log "agent exited with status $rc; restarting in ${delay}s"
    sleep "$delay" &
    wait $!
    delay=$((delay * 2 > 30 ? 30 : delay * 2))
done
rm -f "$run_dir/agent.pid" "$run_dir/supervisor.pid"
