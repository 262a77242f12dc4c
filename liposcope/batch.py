"""Run one job per slide: isolate failures, resume finished slides, summarise at the end."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from liposcope.errors import LiposcopeError, from_os_error, one_line, printable, where
from liposcope.progress import progress

log = logging.getLogger(__name__)


Status = Literal["done", "skipped", "failed"]


@dataclass(frozen=True)
class JobResult:
    """What a job reports for one slide it did not fail on: a one-line ``detail``, and whether it was already done."""

    detail: str
    skipped: bool = False


@dataclass(frozen=True)
class Outcome:
    """What happened to one slide: ``done``, ``skipped`` (already complete) or ``failed`` (``detail`` says why)."""

    slide: str
    status: Status
    detail: str
    seconds: float
    user_error: bool = True


def run_batch(slides: Sequence[str | Path], job: Callable[[Path], JobResult], *, desc: str) -> list[Outcome]:
    """Call ``job(slide)`` for each slide; it returns a :class:`JobResult`, or raises.

    One slide's failure never stops the others. A file given twice runs once.

    Raises:
        LiposcopeError: two different files share a slide id (they would write the same outputs);
            raised before any slide runs.
    """
    outcomes = []
    for slide in progress(unique_slides(slides), total=len(slides), desc=desc, unit="slide"):
        start = time.perf_counter()
        try:
            result = job(Path(slide))
            status: Status = "skipped" if result.skipped else "done"
            outcomes.append(Outcome(str(slide), status, result.detail, time.perf_counter() - start))
        except (LiposcopeError, OSError) as exc:
            user = exc if isinstance(exc, LiposcopeError) else from_os_error(exc)
            if user is None:
                outcomes.append(_internal(slide, exc, start))
                continue
            log.error("%s", one_line(str(user)))
            outcomes.append(Outcome(str(slide), "failed", str(user), time.perf_counter() - start))
        except Exception as exc:  # noqa: BLE001 (a bug in one slide's job; logged with its traceback under -v)
            outcomes.append(_internal(slide, exc, start))
    return outcomes


def _internal(slide: str | Path, exc: BaseException, start: float) -> Outcome:
    message = f"{printable(str(slide))}: internal error ({type(exc).__name__}: {exc}); rerun with -v for details"
    log.error("%s", one_line(message))
    log.debug("traceback", exc_info=True)
    return Outcome(str(slide), "failed", repr(exc), time.perf_counter() - start, user_error=False)


def unique_slides(slides: Sequence[str | Path]) -> list[Path]:
    """The slides in order, each file once; refuses two files with one slide id (file name without extension).

    Raises:
        LiposcopeError: naming both files.
    """
    by_id: dict[str, Path] = {}
    out = []
    for slide in map(Path, slides):
        first = by_id.setdefault(slide.stem, slide)
        if first is slide:
            out.append(slide)
        elif first.resolve() != slide.resolve():
            sid = printable(slide.stem)
            problem = f"has the same slide id '{sid}' as {printable(first)}, so both would write OUT/{sid}"
            fix = "rename one of the files or run them with different --out folders"
            raise LiposcopeError(where(slide, problem, fix))
    return out


def summary(outcomes: Sequence[Outcome]) -> str:
    """A plain-text table: one row per slide, then the totals."""
    width = max(len(printable(Path(o.slide).name)) for o in outcomes)
    rows = [f"{'slide':<{width}}  {'status':<7}  {'time':>7}  detail"]
    for o in outcomes:
        detail = one_line(o.detail if o.status != "failed" else o.detail.split(": ", 1)[-1])
        rows.append(f"{printable(Path(o.slide).name):<{width}}  {o.status:<7}  {o.seconds:6.1f}s  {detail}")
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed")}
    rows.append(", ".join(f"{n} {s}" for s, n in counts.items()))
    return "\n".join(rows)


def exit_code(outcomes: Sequence[Outcome]) -> int:
    """0 when every slide succeeded, 2 when only user errors failed, 1 when something unexpected failed."""
    failed = [o for o in outcomes if o.status == "failed"]
    if not failed:
        return 0
    return 2 if all(o.user_error for o in failed) else 1
