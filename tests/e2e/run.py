#!/usr/bin/env python3
"""tests/e2e/run.py: runs every tests/e2e/test_*.py (or the modules named as arguments) and
ends with the line `e2e: N passed, N failed`. Exit status 0 only when nothing failed."""

import os
import signal
import sys
import time
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from lib import process_table  # noqa: E402 - after the path is set


class CountingResult(unittest.TextTestResult):
    def startTest(self, test):
        self._started = time.monotonic()
        super().startTest(test)

    def addSuccess(self, test):
        super().addSuccess(test)
        print(f"  ok    {test.id()} ({time.monotonic() - self._started:.1f}s)", flush=True)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        print(f"  FAIL  {test.id()}", flush=True)

    def addError(self, test, err):
        super().addError(test, err)
        print(f"  ERROR {test.id()}", flush=True)


def stop_leftovers():
    """Every installation's runsvdir is a child of this process until its teardown stops it: any
    still running now was left behind by a test. Stops them (SIGHUP: runsvdir ends its
    services) and returns their pids."""
    me = os.getpid()
    leaked = [pid for pid, (comm, ppid, state) in process_table().items()
              if ppid == me and comm == "runsvdir" and state != "Z"]
    for pid in leaked:
        os.kill(pid, signal.SIGHUP)
    return leaked


def main():
    names = sys.argv[1:] or sorted(p.stem for p in HERE.glob("test_*.py"))
    loader = unittest.defaultTestLoader
    suite = unittest.TestSuite()
    for name in names:
        suite.addTests(loader.loadTestsFromName(name))
    runner = unittest.TextTestRunner(resultclass=CountingResult, verbosity=0, stream=sys.stdout)
    result = runner.run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    leaked = stop_leftovers()
    if leaked:
        print(f"  FAIL  a test left supervisors running (stopped now): {leaked}", flush=True)
        failed += 1
    passed = result.testsRun - (failed - (1 if leaked else 0)) - len(result.skipped)
    print(f"e2e: {passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
