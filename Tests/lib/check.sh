# The shell test suites' harness, sourced after `set -u`: a temporary folder $T
# (removed on exit) and `check DESCRIPTION COMMAND...`, which counts the command
# as passed or failed (printing the tail of its output when it fails); `report`
# prints "N passed, M failed" and exits non-zero on any failure.
T=$(mktemp -d "${TMPDIR:-/tmp}/aimetcle-${SUITE:-test}.XXXXXX")
trap 'rm -rf "$T"' EXIT
passed=0
failed=0
check() {
    local description=$1
    shift
    if "$@" >"$T/out" 2>&1; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: $description" >&2
        sed 's/^/  /' "$T/out" | tail -20 >&2
    fi
}
report() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
