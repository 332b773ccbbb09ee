#!/usr/bin/env bash
# The full kill loop of issue 12 ("Reliability"): 100 SIGKILLs while one `wa-server
# --sandbox` sends 10,000 messages between two of its sessions (tests/kill_loop.rs, the
# same test the suite runs in its short form). Prints the figures line
# (`kill_loop figures: ...`) at the end; pass KILL_LOOP_SEED to replay a run.
#
#   wa-server/tests/kill_loop.sh                 # release build, 100 kills, 10,000 messages
#   KILL_LOOP_KILLS=30 KILL_LOOP_MESSAGES=2000 wa-server/tests/kill_loop.sh
#   PROFILE=dev wa-server/tests/kill_loop.sh     # debug build
set -euo pipefail
cd "$(dirname "$0")/../.."
export KILL_LOOP_KILLS="${KILL_LOOP_KILLS:-100}"
export KILL_LOOP_MESSAGES="${KILL_LOOP_MESSAGES:-10000}"
# About one kill per 100 messages at the release build's pace.
export KILL_LOOP_GAP_MS="${KILL_LOOP_GAP_MS:-1500}"
profile=(--release)
if [ "${PROFILE:-release}" = dev ]; then profile=(); fi
exec cargo test "${profile[@]}" -p wa-server --test kill_loop -- --nocapture
