"""The parent of every local training command: it takes the whole process tree down with it.

Run as a script (`python -S launcher.py -- ARGV…`, stdlib only and no `subprocess`, so it starts in about
15 ms). It makes itself a child subreaper, so the command's descendants stay its descendants even when
they start their own sessions (torchrun's workers do) or lose their parent (`sh -c`). It ends the whole
tree, TERM then KILL, when it gets SIGTERM/SIGINT/SIGHUP, and with KILL at once when pgolf dies (a
`kill -9` of pgolf included): it watches its parent pid. Its exit code is the command's (128 + N for a
signal N).

It waits on Linux pidfds (the command's and pgolf's) and on a signal wake-up pipe, so the command's end is
seen at once rather than at the next poll; where pidfds are missing it polls every 0.1 s.
"""

import contextlib
import ctypes
import os
import select
import signal
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


class _Children:
    """Reaps every child (a subreaper adopts orphans) and keeps the exit status of the command's."""

    def __init__(self, command_pid):
        self.command_pid = command_pid
        self.code = None  # the command's exit code once reaped (negative: killed by that signal)

    def reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.command_pid:
                self.code = os.waitstatus_to_exitcode(status)

    def end_tree(self, grace=_GRACE_SECONDS):
        """TERM every descendant, KILL what is left after the grace, reap them all."""
        me = os.getpid()
        _signal_all(descendants(me), signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            self.reap()
            if not descendants(me):
                return
            time.sleep(0.05)
        while True:
            self.reap()
            left = descendants(me)
            if not left:
                return
            _signal_all(left, signal.SIGKILL)
            time.sleep(0.05)


def pidfd(pid):
    """A file descriptor that becomes readable when process `pid` ends, or None (no pidfds here)."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def wait_readable(fds, timeout):
    """Block until one of `fds` is readable or `timeout` passes (a plain sleep when there are none)."""
    if fds:
        select.select(fds, [], [], timeout)
    else:
        time.sleep(timeout)


def _wake_pipe():
    """A pipe a signal writes to (signal.set_wakeup_fd), so a wait on it ends when a signal arrives.
    Both ends are close-on-exec (PEP 446), so the command never inherits them."""
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    os.set_blocking(write_end, False)
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    return read_end


def _drain(fd):
    with contextlib.suppress(BlockingIOError):
        os.read(fd, 64)


def main(argv):
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    stopping = []

    def on_signal(signum, frame):
        stopping.append(signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    wake = _wake_pipe()
    if not argv:
        print("launcher: no command given", flush=True)
        return 2
    try:
        # Python ignores SIGPIPE and SIGXFSZ; the command gets them back at their defaults, as subprocess does.
        pid = os.posix_spawnp(argv[0], argv, os.environ, setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))
        children = _Children(pid)
    except OSError as err:
        print(f"cannot start {argv[0]}: {err.strerror or err}", flush=True)
        return 127
    # pgolf's pidfd is only a hint (its pid may already be reused): getppid() below decides.
    watched = [fd for fd in (pidfd(children.command_pid), pidfd(parent)) if fd is not None]
    while True:
        wait_readable([*watched, wake], _POLL_SECONDS)
        _drain(wake)
        children.reap()
        if children.code is not None:
            break
        if os.getppid() != parent:
            # pgolf is gone (a kill -9): nobody waits for a graceful end, and the run is recorded as a
            # crash by the next start, so the tree goes at once.
            children.end_tree(grace=0.0)
            break
        if stopping:
            children.end_tree()
            break
    children.end_tree()  # whatever the command left running (a daemonized helper, a torchrun worker)
    code = children.code if children.code is not None else -signal.SIGKILL
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--"]:
        args = args[1:]
    sys.exit(main(args))
