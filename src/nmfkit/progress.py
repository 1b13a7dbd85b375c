"""Progress of fits and rank surveys, wherever the output goes.

`Progress(total, label, unit)` picks its display once, when created:

    terminal       one line on stderr, rewritten in place ("\\r"), at most 5 times a second;
    notebook       an updating display in the cell: tqdm's notebook bar when tqdm and
                   ipywidgets are installed, else an IPython display updated in place;
    file or pipe   a plain line on stderr at the start, every `LOG_INTERVAL` seconds and at
                   the end, so that batch logs show that a long job is alive.

Nothing is shown when `enabled` is false (fit's `verbose=False`, the CLI's `--quiet`).
"""
from __future__ import annotations

import sys
import time

LOG_INTERVAL = 10.0      # seconds between plain lines in a log file or pipe
TERMINAL_INTERVAL = 0.2  # seconds between redraws on a terminal or in a notebook
WIDTH = 30               # characters of the bar


def _in_notebook() -> bool:
    """True inside a Jupyter kernel (ipykernel's shell), whatever the streams are."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:         # an IPython too old or half-imported: treat as no notebook
        return False
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):      # no isatty, or a closed stream
        return False


def display_mode(stream=None) -> str:
    """'terminal', 'notebook' or 'log': how progress is shown for `stream` (default stderr)."""
    stream = sys.stderr if stream is None else stream
    if _in_notebook():
        return "notebook"
    return "terminal" if _isatty(stream) else "log"


class Progress:
    """A progress display for `total` steps of `unit` (e.g. 'iterations', 'runs').

    `update(done, **values)` reports `done` steps and named values shown after the count
    (floats in 6 significant digits); `close()` shows the final state once."""

    def __init__(self, total: int, label: str = "nmf", unit: str = "", enabled: bool = True, stream=None,
                 mode: str | None = None):
        self.total, self.label, self.unit = int(total), label, unit
        self.stream = sys.stderr if stream is None else stream
        self.enabled = bool(enabled) and self.stream is not None
        self.mode = (mode or display_mode(self.stream)) if self.enabled else "off"
        self.started = time.perf_counter()
        self._last_shown, self._dirty, self._closed = None, False, False
        self._state = (0, {})
        self._handle = self._tqdm = None

    # -- text -------------------------------------------------------------------------------------
    def text(self, bar=True) -> str:
        done, values = self._state
        parts = [self.label]
        if bar:
            filled = int(WIDTH * min(done, self.total) / max(self.total, 1))
            parts.append(f"[{'#' * filled}{'.' * (WIDTH - filled)}]")
        parts.append(f"{done}/{self.total}" + (f" {self.unit}" if self.unit else ""))
        for name, value in values.items():
            parts.append(f"{name} {value:.6g}" if isinstance(value, float) else f"{name} {value}")
        parts.append(f"({time.perf_counter() - self.started:.1f} s)")
        return " ".join(parts)

    # -- reporting --------------------------------------------------------------------------------
    def update(self, done, force=False, **values):
        if not self.enabled or self._closed:
            return
        self._state, self._dirty = (int(done), values), True
        now = time.perf_counter()
        interval = LOG_INTERVAL if self.mode == "log" else TERMINAL_INTERVAL
        if force or self._last_shown is None or now - self._last_shown >= interval:
            self._last_shown = now
            self._show()

    def close(self):
        """Show the final state (once) and end the display."""
        if not self.enabled or self._closed:
            return
        if self._dirty or self._last_shown is None:
            self._show()
        self._closed = True
        if self.mode == "terminal":
            self._write("\n")
        elif self._tqdm is not None:
            self._tqdm.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _write(self, text):
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):        # a closed or broken stream must not stop the computation
            self.enabled = False

    def _show(self):
        self._dirty = False
        if self.mode == "terminal":
            self._write("\r" + self.text())
        elif self.mode == "log":
            self._write(self.text(bar=False) + "\n")
        else:
            self._show_notebook()

    def _show_notebook(self):
        done, values = self._state
        if self._tqdm is None and self._handle is None:
            try:
                import ipywidgets  # noqa: F401   (tqdm's notebook bar needs it)
                from tqdm.notebook import tqdm
                self._tqdm = tqdm(total=self.total, desc=self.label, unit=self.unit.rstrip("s") or "it")
            except Exception:      # no tqdm/ipywidgets (or no widget front end): a plain updating display
                self._tqdm = None
        if self._tqdm is not None:
            self._tqdm.n = done
            if values:
                self._tqdm.set_postfix({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in values.items()},
                                       refresh=False)
            self._tqdm.refresh()
            return
        try:
            from IPython.display import Pretty, display
            if self._handle is None:
                self._handle = display(Pretty(self.text()), display_id=True)
            else:
                self._handle.update(Pretty(self.text()))
        except Exception:          # IPython without display hooks: fall back to plain lines
            self.mode = "log"
            self._write(self.text(bar=False) + "\n")
