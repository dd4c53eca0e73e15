"""What a long step is doing, for whoever watches a command run.

`step` announces a step and, when it ends, how long it took; `counted` shows a Keras
progress bar over a loop whose length is known. Both speak through the `tfzoo.progress`
logger at INFO level: the `tfzoo` command shows them (it logs INFO), while a program that
uses tfzoo as a library sees them only if it asks (`logging.basicConfig(level=logging.INFO)`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

logger = logging.getLogger("tfzoo.progress")

T = TypeVar("T")


def showing() -> bool:
    """Whether progress is shown (the logger is enabled for INFO)."""
    return logger.isEnabledFor(logging.INFO)


@contextlib.contextmanager
def step(what: str) -> Iterator[None]:
    """Logs "`what` ..." before the block and "`what`: done in S s" after it."""
    if not showing():
        yield
        return
    logger.info("%s ...", what)
    began = time.perf_counter()
    yield
    logger.info("%s: done in %.1f s", what, time.perf_counter() - began)


def counted(items: Iterable[T], total: int, what: str, *, unit: str = "step") -> Iterator[T]:
    """Yields `items` (`total` of them), drawing a Keras progress bar of them under the
    title `what` where progress is shown and there is more than one."""
    if not showing() or total < 2:
        yield from items
        return
    import tensorflow as tf  # noqa: PLC0415 (the bar only where one is drawn)

    logger.info("%s", what)
    bar = tf.keras.utils.Progbar(total, unit_name=unit)
    for done, item in enumerate(items, 1):
        yield item
        bar.update(done)
