# Sourced by pairing_page.sh, schemathesis.sh and tests/waha_client.rs: installs what they
# need on a fresh Debian machine, and fails loudly (exit 1 with the reason) when it cannot.
#
# - Debian's chromium (plus fonts-liberation so page text renders), with apt-get as root or
#   through `sudo -n`; `apt-get update` first, non-interactive, no recommended extras.
# - A Python venv under target/ci-tools/venv holding the pinned packages of
#   wa-server/tests/requirements.txt (Playwright, which drives the system chromium and never
#   downloads a browser, and schemathesis). It is rebuilt when requirements.txt changes.
#
# Each install runs under its own exclusive lock (flock on target/ci-tools/apt.lock and
# venv.lock) because cargo runs the two script tests in parallel: the venv may build while
# chromium installs, but no install runs twice at once.
# Expects: the current directory is the repo root.

CI_TOOLS_DIR="$PWD/target/ci-tools"
CI_VENV="$CI_TOOLS_DIR/venv"
CI_REQUIREMENTS="$PWD/wa-server/tests/requirements.txt"

ci_die() {
    echo "error: $*" >&2
    exit 1
}

# ci_lock NAME: takes target/ci-tools/NAME.lock (waits up to 30 minutes).
ci_lock() {
    mkdir -p "$CI_TOOLS_DIR"
    exec {CI_LOCK_FD}>"$CI_TOOLS_DIR/$1.lock"
    flock -w 1800 "$CI_LOCK_FD" || ci_die "timed out waiting for $CI_TOOLS_DIR/$1.lock"
}

ci_unlock() {
    flock -u "$CI_LOCK_FD"
    exec {CI_LOCK_FD}>&-
}

# Runs a command as root: directly when we are root, else through passwordless sudo.
ci_as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        ci_die "installing Debian packages needs root or passwordless sudo (tried: $*)"
    fi
}

ensure_chromium() {
    if command -v chromium >/dev/null 2>&1; then
        return 0
    fi
    ci_lock apt
    if ! command -v chromium >/dev/null 2>&1; then
        command -v apt-get >/dev/null 2>&1 ||
            ci_die "chromium is not installed and there is no apt-get to install it (Debian's chromium package is needed)"
        local started=$SECONDS
        echo "installing chromium with apt-get ..." >&2
        ci_as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq ||
            ci_die "apt-get update failed: cannot install chromium"
        ci_as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
            --no-install-recommends chromium fonts-liberation >"$CI_TOOLS_DIR/apt.log" 2>&1 ||
            { tail -n 30 "$CI_TOOLS_DIR/apt.log" >&2; ci_die "apt-get install chromium failed (log: $CI_TOOLS_DIR/apt.log)"; }
        command -v chromium >/dev/null 2>&1 || ci_die "apt-get installed chromium but it is not on PATH"
        echo "chromium installed in $((SECONDS - started)) s: $(chromium --version 2>/dev/null)" >&2
    fi
    ci_unlock
}

# Prints the venv's python; builds the venv first if it is missing or stale. Called as
# "$(ensure_venv)", where errexit does not apply: every step checks its own status.
ensure_venv() {
    local stamp="$CI_VENV/.requirements.sha256" want
    [ -f "$CI_REQUIREMENTS" ] || ci_die "$CI_REQUIREMENTS is missing"
    want="$(sha256sum "$CI_REQUIREMENTS" | cut -d' ' -f1)"
    [ -n "$want" ] || ci_die "cannot hash $CI_REQUIREMENTS"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        ci_lock venv
        if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
            local python started=$SECONDS
            python="$(command -v python3)" || ci_die "python3 is not installed (needed for Playwright and schemathesis)"
            echo "building $CI_VENV from $CI_REQUIREMENTS ..." >&2
            rm -rf "$CI_VENV"
            "$python" -m venv "$CI_VENV" >&2 ||
                ci_die "python3 -m venv failed (Debian: apt-get install python3-venv)"
            "$CI_VENV/bin/python" -m pip install -q --disable-pip-version-check --no-input \
                -r "$CI_REQUIREMENTS" >&2 ||
                ci_die "pip install -r $CI_REQUIREMENTS failed"
            echo "$want" >"$stamp"
            echo "venv ready in $((SECONDS - started)) s" >&2
        fi
        ci_unlock
    fi
    [ -x "$CI_VENV/bin/python" ] || ci_die "$CI_VENV/bin/python is missing"
    echo "$CI_VENV/bin/python"
}

# Prints the python of target/ci-tools/waha-venv, the venv of the pinned WAHA client
# (wa-server/tests/requirements-waha.txt, for waha_client.py); built like ensure_venv's
# (same lock, rebuilt when the requirements change). Called as "$(ensure_waha_venv)".
ensure_waha_venv() {
    local CI_VENV="$CI_TOOLS_DIR/waha-venv"
    local CI_REQUIREMENTS="$PWD/wa-server/tests/requirements-waha.txt"
    ensure_venv
}

# Prints the path of axe.min.js (axe-core, pinned in wa-server/tests/browser/package-lock.json),
# installed with `npm ci` under target/ci-tools/axe; reinstalled when the lock file changes.
# Called as "$(ensure_axe)": every step checks its own status.
ensure_axe() {
    local src="$PWD/wa-server/tests/browser" dir="$CI_TOOLS_DIR/axe" want
    local stamp="$dir/.lock.sha256"
    [ -f "$src/package-lock.json" ] || ci_die "$src/package-lock.json is missing"
    want="$(sha256sum "$src/package-lock.json" | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        ci_lock npm
        if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
            command -v npm >/dev/null 2>&1 || ci_die "npm is not installed (needed for axe-core)"
            rm -rf "$dir"
            mkdir -p "$dir"
            cp "$src/package.json" "$src/package-lock.json" "$dir/"
            (cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error) >&2 ||
                ci_die "npm ci of axe-core failed"
            echo "$want" >"$stamp"
        fi
        ci_unlock
    fi
    [ -s "$dir/node_modules/axe-core/axe.min.js" ] || ci_die "axe-core is missing from $dir"
    echo "$dir/node_modules/axe-core/axe.min.js"
}
