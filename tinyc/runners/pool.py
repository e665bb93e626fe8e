"""Several board sessions working through one list of input records.

`infer_sharded(open_one, records, jobs)` opens `jobs` sessions (`open_one(k)` opens the
k-th: its own emulator, or its own serial port), each in a thread of its own, and hands
them the records one at a time from a shared queue, so a fast board takes more. Results
are yielded in record order, whatever order they finish in.

A session that fails (its emulator died, its port went away, a reply never came) is
closed and its record goes back to the front of the queue for another session. The run
fails only when no session is left, or when a record has failed on MAX_TRIES sessions
(then it is the record, not the board). Before raising, the results already in hand are
yielded (in order, with gaps where records were not run), so nothing measured is lost.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterator

from tinyc.errors import TinycError
from tinyc.runners.session import InferResult, Session

MAX_TRIES = 2          # sessions a record may fail on before the run gives up on it
JOIN_SECONDS = 10.0    # how long an abandoned run waits for each worker to close its board


@dataclass
class PoolEvents:
    """What happened to the sessions besides results: each lost session's error."""
    lost: list[str] = field(default_factory=list)


class _Queue:
    """The records not yet run, shared by the workers."""

    def __init__(self, n: int):
        self.pending = deque(range(n))
        self.tries = [0] * n
        self.cond = threading.Condition()
        self.stopped = False

    def take(self) -> int | None:
        """The next record, or None when the run is over (or stopped)."""
        with self.cond:
            while not self.pending and not self.stopped:
                self.cond.wait()
            return None if self.stopped else self.pending.popleft()

    def give_back(self, i: int) -> int:
        """Put record i first in line again; returns how many sessions it has failed on."""
        with self.cond:
            self.tries[i] += 1
            self.pending.appendleft(i)
            self.cond.notify()
            return self.tries[i]

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()


def _worker(k: int, open_one: Callable[[int], Session], records: list[bytes], work: _Queue,
            events: queue.Queue) -> None:
    try:
        session = open_one(k)
    except TinycError as exc:
        events.put(("lost", k, None, str(exc)))
        return
    except BaseException as exc:  # a bug: let the main thread raise it
        events.put(("crash", k, None, exc))
        return
    i = None
    try:
        with session:
            while (i := work.take()) is not None:
                result = session.infer(records[i])
                events.put(("result", k, i, result))
                i = None
    except TinycError as exc:
        events.put(("lost", k, i, str(exc)))
    except BaseException as exc:
        events.put(("crash", k, i, exc))
    else:
        events.put(("done", k, None, None))


def infer_sharded(open_one: Callable[[int], Session], records: list[bytes], jobs: int,
                  events_out: PoolEvents | None = None) -> Iterator[tuple[int, InferResult]]:
    """(index, result) for every record, in index order, run over `jobs` sessions."""
    if jobs < 1:
        raise TinycError(f"--jobs must be at least 1, not {jobs}")
    n = len(records)
    if n == 0:
        return
    jobs = min(jobs, n)
    work = _Queue(n)
    events: queue.Queue = queue.Queue()
    threads = [threading.Thread(target=_worker, args=(k, open_one, records, work, events),
                                name=f"tinyc-session-{k}", daemon=True) for k in range(jobs)]
    for t in threads:
        t.start()
    ready: dict[int, InferResult] = {}
    next_i = 0
    live = jobs
    failure: str | None = None
    try:
        while next_i < n:
            kind, k, i, value = events.get()
            if kind == "result":
                ready[i] = value
                while next_i in ready:
                    yield next_i, ready.pop(next_i)
                    next_i += 1
                continue
            if kind == "crash":
                raise value
            if kind == "done":  # a worker saw the queue stopped
                live -= 1
                continue
            # a session was lost (failed to open, or mid-run)
            live -= 1
            tries = work.give_back(i) if i is not None else 0
            if live == 0:
                failure = value if jobs == 1 else f"all {jobs} board sessions failed; the last said: {value}"
                break
            if tries >= MAX_TRIES:
                failure = f"sample {i} failed on {MAX_TRIES} board sessions; the last said: {value}"
                break
            if events_out is not None:   # survived: the others carry on
                events_out.lost.append(value)
        if failure is not None:
            for i in sorted(ready):
                yield i, ready[i]
            ready.clear()
            raise TinycError(failure)
    finally:
        work.stop()
        for t in threads:
            t.join(JOIN_SECONDS)
