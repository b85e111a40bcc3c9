"""Group commit: concurrent requests share one database round trip, and each still waits for its own.

A thread that submits an item while no batch is running becomes the leader: it runs a batch of
everything queued so far with one call. Items submitted while that batch runs wait and go into the
next batch, whose leader is the first of them. So every item's operation starts after the item
arrived (a read sees every write that finished before it was asked for; a write is stored before
its caller goes on), and under load N concurrent requests cost one round trip instead of N.

With one request at a time there is nothing to wait for: the caller leads at once, alone.

One item never fails the others: ``run_batch`` answers an item it could not do with
:class:`Failed` (its caller alone gets that error) and does the rest. Only an error that stops the
whole batch (the database unreachable) reaches every caller of that batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Failed:
    """The result of one item that failed: its caller gets ``error``, the batch goes on."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Slot(Generic[Item, Result]):
    __slots__ = ("item", "result", "error", "lead", "ready")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.result: Result | None = None
        self.error: BaseException | None = None
        self.lead = False
        self.ready = threading.Event()


class GroupCommit(Generic[Item, Result]):
    """Runs ``run_batch(items) -> results`` (same length and order) for items of concurrent callers.

    A result may be :class:`Failed` for an item that could not be done; its caller gets the error.
    """

    def __init__(self, run_batch: Callable[[list[Item]], Sequence[Result | Failed]],
                 max_batch: int = 256) -> None:
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Slot[Item, Result]] = []
        self._running = False

    def submit(self, item: Item) -> Result:
        """Run ``item`` in the next batch and return its result (or raise the batch's error)."""
        slot: _Slot[Item, Result] = _Slot(item)
        with self._lock:
            self._queue.append(slot)
            if not self._running:
                self._running = True
                slot.lead = True
        if not slot.lead:
            slot.ready.wait()  # set when our batch is done, or when we are made the next leader
        if slot.lead:
            self._lead()
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

    def _lead(self) -> None:
        with self._lock:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
        try:
            results = self._run_batch([slot.item for slot in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} items gave {len(results)} results")
            for slot, result in zip(batch, results, strict=True):
                if isinstance(result, Failed):
                    slot.error = result.error
                else:
                    slot.result = result
        except BaseException as error:  # the whole batch failed: every caller of it sees why
            for slot in batch:
                slot.error = error
        finally:
            with self._lock:
                if self._queue:  # items that arrived during this batch: the first of them leads next
                    successor = self._queue[0]
                    successor.lead = True
                    successor.ready.set()
                else:
                    self._running = False
            for slot in batch:
                if not slot.lead:
                    slot.ready.set()
