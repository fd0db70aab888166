"""Two stages joined by a few buffers: a producer fills them, a consumer processes them in order.

The producer (the calling thread) asks for a free buffer, forms an item in
it and puts the item; ``consume`` processes the items in the order they were
put, either at once on the calling thread (``threaded=False``) or on one
second thread, so that the producer forms the next items meanwhile (numpy
releases the GIL in BLAS and LAPACK: two stages, two cores)::

    buffers = np.empty((4, ...))
    with Pipeline(consume, len(buffers), threaded=True) as pipe:
        for ...:
            b = pipe.next_buffer()          # waits until the consumer is done with buffers[b]
            ...form an item in buffers[b]...
            pipe.put(b, buffers[b], ...)    # consume(buffers[b], ...), now or on the second thread
    # here every item has been consumed

Guarantees
----------
* Items are consumed in the order they were put, one at a time.
* A buffer is handed out again only after the item put in it has been
  consumed. Buffers are handed out in rotation (0, 1, …, n − 1, 0, …), so with
  n ≥ 2 the buffer of the item put last is not handed out before the next
  item is put: the producer may keep reading it while it forms the next one.
* The first error of ``consume`` is raised in the producer (by ``put``
  inline; else by the next ``next_buffer`` or on leaving the ``with``
  block), and the items after it are not consumed. An error (or Ctrl-C) in
  the producer skips the items not yet consumed and propagates.
* A set ``stop`` event cancels: ``next_buffer`` raises
  :class:`concurrent.futures.CancelledError` and the consumer skips what is
  left. (Several pipelines sharing one event stop together.)
* Leaving the ``with`` block, normally or by an error, joins the second
  thread: none is left running.
"""
from __future__ import annotations

import queue
import threading
from concurrent.futures import CancelledError


class Pipeline:
    """A producer on the calling thread, ``consume`` on the same or a second thread (see the module).

    Parameters
    ----------
    consume : callable
        Called as ``consume(*args)`` for each ``put(b, *args)``, in order.
    buffers : int
        Number of buffers n ≥ 1 the producer rotates through (indices 0 … n − 1).
        Items in flight (formed, waiting or being consumed) never exceed n.
    threaded : bool
        Consume on a second thread (else inside ``put``).
    stop : threading.Event, optional
        Cancels the pipeline when set (see the module).
    """

    def __init__(self, consume, buffers: int, threaded: bool, stop: threading.Event | None = None):
        if buffers < 1:
            raise ValueError(f"a pipeline needs at least one buffer, got {buffers}")
        self.consume = consume
        self.stop = threading.Event() if stop is None else stop
        self._free = queue.SimpleQueue()        # buffers nobody reads, in the order they were freed
        for b in range(buffers):
            self._free.put(b)
        self._todo = queue.SimpleQueue()        # (buffer, args) waiting for the consumer; None ends it
        self._error = None                      # the consumer's first error
        self._abandoned = False                 # the producer failed: nobody will read the results
        self._thread = threading.Thread(target=self._consume_all, daemon=True) if threaded else None

    def __enter__(self) -> "Pipeline":
        if self._thread is not None:
            self._thread.start()
        return self

    def next_buffer(self) -> int:
        """Index of a buffer the consumer is done with; waits for one if all are in flight."""
        self._check()
        b = self._free.get()
        self._check()
        return b

    def put(self, b: int, *args) -> None:
        """Hand the item formed in buffer ``b`` to the consumer: ``consume(*args)``."""
        if self._thread is None:
            try:
                self.consume(*args)
            finally:
                self._free.put(b)
        else:
            self._todo.put((b, args))

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            self._abandoned = True
        if self._thread is not None:
            self._todo.put(None)
            try:
                self._thread.join()
            except BaseException:               # Ctrl-C while waiting: skip the rest, wait for the current item
                self._abandoned = True
                self._thread.join()
                raise
        if exc_type is None and self._error is not None:
            raise self._error
        return False

    def _check(self) -> None:
        """Raise the consumer's first error, or CancelledError once ``stop`` is set."""
        if self._error is not None:
            raise self._error
        if self.stop.is_set():
            raise CancelledError("the pipeline was stopped")

    def _consume_all(self) -> None:
        """The second thread: consume items in order until the end marker; after an error, skip them."""
        while (job := self._todo.get()) is not None:
            b, args = job
            if self._error is None and not self._abandoned:
                try:
                    if self.stop.is_set():
                        raise CancelledError("the pipeline was stopped")
                    self.consume(*args)
                except BaseException as error:      # raised in the producer; this thread goes on freeing buffers
                    self._error = error
            self._free.put(b)
