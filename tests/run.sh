#!/bin/bash
# tests/run.sh: the body of `make test` (scripts/deps.sh has checked the packages already).
#
#   1. build every program            make -j2
#   2. build the unit tests with ASan+UBSan and run them once (build-san/unit_tests);
#      the sanitized run is the unit-test run: running them again unsanitized adds nothing
#   3. the end-to-end tests            python3 tests/e2e/run.py (last line: e2e: N passed, N failed)
#
# Prints everything as it goes and ends with exactly one line `N passed, N failed`, the sum of
# Catch2 test cases and e2e tests. A stage that cannot run (build failure, crash, no summary)
# counts as one failure, never as 0 passed. Exit status 0 only when nothing failed.
set -u
cd "$(dirname "$0")/.." || exit 1

passed=0
failed=0
problems=()

stage() { echo; echo "=== $* ==="; }
trouble() { failed=$((failed + 1)); problems+=("$1"); echo "*** $1"; }

# 1. Programs (needed by the e2e tests).
stage "build: make -j2"
built=1
if ! make -j2; then built=; trouble "build failed (make -j2)"; fi

# 2. Unit tests under AddressSanitizer and UndefinedBehaviorSanitizer.
stage "unit tests under ASan+UBSan: make -j2 SAN=1 build-san/unit_tests"
echo "(the unit tests run once, sanitized; the plain build's unit tests would add nothing)"
if make -j2 SAN=1 build-san/unit_tests; then
  log=$(mktemp)
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    timeout 300 build-san/unit_tests --use-colour no 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  summary=$(grep -E '^(All tests passed|test cases:)' "$log" | tail -n 1)
  rm -f "$log"
  if [[ $summary =~ ^All\ tests\ passed.*\ in\ ([0-9]+)\ test\ case ]]; then
    p=${BASH_REMATCH[1]} f=0
  elif [[ $summary =~ ^test\ cases: ]]; then
    p=0 f=0
    [[ $summary =~ ([0-9]+)\ passed ]] && p=${BASH_REMATCH[1]}
    [[ $summary =~ ([0-9]+)\ failed ]] && f=${BASH_REMATCH[1]}
  else
    p=0 f=0
  fi
  passed=$((passed + p))
  failed=$((failed + f))
  echo "unit tests: $p passed, $f failed (exit status $status)"
  if [ -z "$summary" ]; then
    trouble "unit tests gave no summary (exit status $status: crashed, timed out or no tests)"
  elif [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
    trouble "unit tests exited with status $status although every case passed (sanitizer report?)"
  elif [ "$f" -gt 0 ]; then
    problems+=("$f unit test cases failed")
  fi
else
  trouble "build failed (make SAN=1 build-san/unit_tests)"
fi

# 3. End-to-end tests against the real programs.
stage "end-to-end tests: python3 tests/e2e/run.py"
if [ -z "$built" ]; then
  trouble "e2e tests not run: the programs did not build"
else
  log=$(mktemp)
  # SIGINT, so that the harness's context managers stop the runsvdirs they started.
  timeout -s INT -k 30 420 python3 tests/e2e/run.py 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  summary=$(grep -E '^e2e: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
  rm -f "$log"
  if [[ $summary =~ ^e2e:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    p=${BASH_REMATCH[1]} f=${BASH_REMATCH[2]}
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
      trouble "e2e runner exited with status $status although no test failed"
    elif [ "$f" -gt 0 ]; then
      problems+=("$f e2e tests failed")
    fi
  else
    trouble "e2e tests gave no summary (exit status $status: crashed or timed out)"
  fi
fi

echo
if [ ${#problems[@]} -gt 0 ]; then
  echo "=== problems ==="
  printf '  %s\n' "${problems[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
