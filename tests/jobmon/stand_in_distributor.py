"""A stand-in for Jobmon's distributor, for tests: it talks on stderr as the real one does.

Usage: ``python stand_in_distributor.py [--noise] [--never-alive] [--exit-before-alive CODE]
[--die-after SECONDS] [--ignore-sigterm] [--pid-file FILE]``. It prints ``ALIVE`` on stderr once started, then
waits (logging a line on stdout, as Jobmon's does); SIGTERM makes it print ``SHUTDOWN`` and
exit 0. ``--die-after`` makes it exit 3 on its own.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--noise", action="store_true", help="print warnings before ALIVE")
    p.add_argument("--never-alive", action="store_true")
    p.add_argument("--exit-before-alive", type=int)
    p.add_argument("--die-after", type=float)
    p.add_argument("--ignore-sigterm", action="store_true")
    p.add_argument("--pid-file", help="write the pid here once started")
    args, _ = p.parse_known_args()

    def on_term(signum: int, frame: object) -> None:
        if args.ignore_sigterm:
            return
        sys.stderr.write("SHUTDOWN")
        sys.stderr.flush()
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)
    if args.pid_file:
        import os

        with open(args.pid_file, "w") as f:
            f.write(str(os.getpid()))
    if args.noise:
        sys.stderr.write("UserWarning: a package warning that is not the signal\n" * 50)
    if args.exit_before_alive is not None:
        sys.stderr.write("cannot reach the server\n")
        return args.exit_before_alive
    if not args.never_alive:
        sys.stderr.write("ALIVE")
        sys.stderr.flush()
        # Jobmon's distributor logs on stdout: none of it may reach the resume's own stdout.
        sys.stdout.write("[INFO] [jobmon.distributor.distributor_service] Distributor running\n")
        sys.stdout.flush()
    start = time.monotonic()
    while args.die_after is None or time.monotonic() - start < args.die_after:
        time.sleep(0.02)
    return 3


if __name__ == "__main__":
    sys.exit(main())
