"""The parent of every local training command: it takes the whole process tree down with it.

Run as a script (`python -S launcher.py -- ARGV…`, stdlib only, so it starts in milliseconds). It makes
itself a child subreaper, so the command's descendants stay its descendants even when they start their
own sessions (torchrun's workers do) or lose their parent (`sh -c`). It ends the whole tree, TERM then
KILL, when it gets SIGTERM/SIGINT/SIGHUP, and with KILL at once when pgolf dies (a `kill -9` of pgolf
included): it watches its parent pid. Its exit code is the command's (128 + N for a signal N).
"""

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time

_PR_SET_CHILD_SUBREAPER = 36
_POLL_SECONDS = 0.1
_GRACE_SECONDS = 3.0


def _children_map():
    """{ppid: [pid, …]} of every process, from /proc."""
    tree = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        tree.setdefault(int(fields[1]), []).append(int(name))
    return tree


def descendants(pid):
    """Every process below `pid`."""
    tree, found, todo = _children_map(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _signal_all(pids, sig):
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def end_tree(grace=_GRACE_SECONDS):
    """TERM every descendant, KILL what is left after the grace, reap them all."""
    me = os.getpid()
    _signal_all(descendants(me), signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap()
        if not descendants(me):
            return
        time.sleep(0.05)
    while True:
        left = descendants(me)
        if not left:
            return
        _signal_all(left, signal.SIGKILL)
        time.sleep(0.05)
        _reap()


def _reap():
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def main(argv):
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    stopping = []

    def on_signal(signum, frame):
        stopping.append(signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        proc = subprocess.Popen(argv)
    except OSError as err:
        print(f"cannot start {argv[0]}: {err.strerror or err}", flush=True)
        return 127
    while True:
        try:
            code = proc.wait(timeout=_POLL_SECONDS)
            break
        except subprocess.TimeoutExpired:
            pass
        if os.getppid() != parent:
            # pgolf is gone (a kill -9): nobody waits for a graceful end, and the run is recorded as a
            # crash by the next start, so the tree goes at once.
            end_tree(grace=0.0)
            code = proc.wait()
            break
        if stopping:
            end_tree()
            code = proc.wait()
            break
    end_tree()  # whatever the command left running (a daemonized helper, a torchrun worker)
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--"]:
        args = args[1:]
    sys.exit(main(args))
