"""Fails when a process the test command started is still running.

scripts/test.sh marks its run with SYNCAROO_TEST_RUN in the environment,
which every process it starts inherits (servers, wrappers, browsers, the
Lambda emulator). At its end, after stopping what it started, any process
still carrying the mark (other than the test command itself and its
ancestors) was left behind: it is listed, ended, and the run fails.
Usage: python3 tests/leftover_processes.py MARK
"""
import os
import signal
import sys


def ancestors():
    out, pid = set(), os.getpid()
    while pid > 1:
        out.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            break
    return out


def marked(mark):
    needle = f"SYNCAROO_TEST_RUN={mark}".encode()
    mine = ancestors()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in mine:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if needle in env:
            yield int(name), cmd


def main():
    mark = sys.argv[1]
    left = list(marked(mark))
    if not left:
        print("leftover processes: none")
        return 0
    print(f"leftover processes: {len(left)} still running after the test command:")
    for pid, cmd in left:
        print(f"  {pid} {cmd[:200]}")
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return 1


if __name__ == "__main__":
    sys.exit(main())
