"""A serve background loop (the tag watcher, the vulnerability watcher): one daemon thread that runs
`_run` until `stop()`, which sets `_stopping` (the event the loop waits on) and waits for the thread."""

from __future__ import annotations

import threading


class BackgroundLoop:
    thread_name = "ci-gate-background"

    def __init__(self) -> None:
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        raise NotImplementedError
