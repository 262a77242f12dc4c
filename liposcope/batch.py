"""Run one job per slide: isolate failures, resume finished slides, summarise at the end."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from liposcope.errors import LiposcopeError
from liposcope.progress import progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What happened to one slide: ``status`` is ``done``, ``skipped`` (already complete) or ``failed``."""

    slide: str
    status: str
    detail: str
    seconds: float
    user_error: bool = True


def run_batch(slides: Sequence[str | Path], job: Callable[[Path], str], *, desc: str) -> list[Outcome]:
    """Call ``job(slide)`` for each slide; it returns a detail string, or raises.

    A job signals "already complete" by returning a detail that starts with ``"skipped"``.
    One slide's failure never stops the others.
    """
    outcomes = []
    for slide in progress(slides, total=len(slides), desc=desc, unit="slide"):
        start = time.perf_counter()
        try:
            detail = job(Path(slide))
            status = "skipped" if detail.startswith("skipped") else "done"
            outcomes.append(Outcome(str(slide), status, detail, time.perf_counter() - start))
        except LiposcopeError as exc:
            log.error("%s", exc)
            outcomes.append(Outcome(str(slide), "failed", str(exc), time.perf_counter() - start))
        except Exception as exc:
            log.error("%s: internal error (%s: %s); rerun with -v for details", slide, type(exc).__name__, exc)
            log.debug("traceback", exc_info=True)
            outcomes.append(Outcome(str(slide), "failed", repr(exc), time.perf_counter() - start, user_error=False))
    return outcomes


def summary(outcomes: Sequence[Outcome]) -> str:
    """A plain-text table: one row per slide, then the totals."""
    width = max(len(Path(o.slide).name) for o in outcomes)
    rows = [f"{'slide':<{width}}  {'status':<7}  {'time':>7}  detail"]
    for o in outcomes:
        detail = o.detail if o.status != "failed" else o.detail.split(": ", 1)[-1]
        rows.append(f"{Path(o.slide).name:<{width}}  {o.status:<7}  {o.seconds:6.1f}s  {detail}")
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed")}
    rows.append(", ".join(f"{n} {s}" for s, n in counts.items()))
    return "\n".join(rows)


def exit_code(outcomes: Sequence[Outcome]) -> int:
    """0 when every slide succeeded, 2 when only user errors failed, 1 when something unexpected failed."""
    failed = [o for o in outcomes if o.status == "failed"]
    if not failed:
        return 0
    return 2 if all(o.user_error for o in failed) else 1
