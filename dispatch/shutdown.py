"""The signal that a worker process is shutting down, for the worker loops it runs.

A worker loop runs until its campaign has nothing due, which can take hours,
and Celery's warm shutdown waits for running tasks. When the worker starts
shutting down (config/celery.py connects worker_shutting_down to
request_stop), each loop of the process stops claiming, lets the deliveries
in flight finish, puts its unstarted claims back in the queue and returns.
The campaign stays processing, and the sweep wakes a loop on another worker,
or on this one once it is back.

The event is per process: it reaches loops of the threads pool, which run in
the worker's own process, and not those of a prefork pool's children.
"""

from __future__ import annotations

import threading

STOPPING = threading.Event()


def request_stop() -> None:
    """Ask every worker loop of this process to stop claiming and return."""
    STOPPING.set()


def stop_requested() -> bool:
    return STOPPING.is_set()
