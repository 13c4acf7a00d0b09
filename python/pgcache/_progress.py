"""The progress bar of long loads: tqdm's, which draws itself in notebooks and terminals."""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

ProgressArg = Union[bool, Callable[[int, int], Any], None]

#: Loads shorter than this (seconds) show no bar at all.
DELAY = 0.5


class Bar:
    """A context manager giving the engine a ``callback(rows, bytes)``; draws a tqdm bar (rows,
    rows/s, MB) once a load has run for :data:`DELAY` seconds."""

    def __init__(self, progress: ProgressArg, desc: str) -> None:
        self._bar: Any = None
        self.callback: Optional[Callable[[int, int], Any]] = None
        if callable(progress):
            self.callback = progress
        elif progress:
            from tqdm.auto import tqdm

            self._bar = tqdm(desc=desc, unit=" rows", unit_scale=True, delay=DELAY, leave=False)
            self.callback = self._update

    def _update(self, rows: int, nbytes: int) -> None:
        self._bar.set_postfix_str(f"{nbytes / 1e6:.1f} MB", refresh=False)
        self._bar.update(rows - self._bar.n)

    def __enter__(self) -> "Bar":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
