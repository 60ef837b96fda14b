"""Rendering for the CLI: hit tables, info summaries, progress bars and notices."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from pixseek.collection.collection import Collection, CollectionInfo
    from pixseek.core.records import Hit
    from pixseek.ingest.options import IngestReport


def announce_writer_wait(collection: Collection, stream: TextIO | None = None) -> bool:
    """Say so when another writer holds the collection's write lock.

    Call it just before a command takes the lock: the command then waits for the other
    writer as usual, and the user knows why nothing moves. Returns whether it was busy.
    """
    from pixseek.core.errors import CollectionBusyError

    try:
        with collection.writing(timeout=0):
            return False
    except CollectionBusyError:
        print(
            f"pixseek: waiting for another writer to finish with {collection.root} ...",
            file=stream or sys.stderr,
            flush=True,
        )
        return True


def hits_json(hits: Sequence[Hit]) -> str:
    return json.dumps([hit.to_dict() for hit in hits], indent=2)


def hits_table(hits: Sequence[Hit]) -> str:
    if not hits:
        return "no results"
    lines = []
    for rank, hit in enumerate(hits, 1):
        box = "" if hit.box is None else " box=[" + ", ".join(f"{v:g}" for v in hit.box) + "]"
        label = f" [{hit.label}]" if hit.label else ""
        lines.append(f"{rank:3d}. {hit.score:.4f} {hit.kind:6s} {hit.id}{label}{box}  {hit.path}")
    return "\n".join(lines)


def info_text(info: CollectionInfo) -> str:
    lines = [
        f"collection: {info.root}",
        f"model:      {info.model} ({info.dim}-d)",
        f"runtime:    {info.runtime} ({info.precision})",
        *([f"            {info.precision_note}"] if info.precision_note else []),
        f"store:      {info.store}",
        f"images:     {info.images}",
        f"objects:    {info.objects}",
        f"failures:   {info.failures}",
        "copies:     " + (info.calibration.summary() if info.calibration else "not calibrated yet"),
    ]
    if len(info.indexes) > 1:
        lines.append("indexes:")
        lines += [f"  {i.name}: {i.model} ({i.dim}-d), {i.records} records" for i in info.indexes]
    lines += [f"  {failure.path}: {failure.error}" for failure in info.failed_files]
    if info.failures > len(info.failed_files):
        lines.append(f"  ... and {info.failures - len(info.failed_files)} more")
    return "\n".join(lines)


def info_json(info: CollectionInfo) -> str:
    return json.dumps(asdict(info), indent=2)


def report_text(report: IngestReport) -> str:
    lines = [
        f"indexed {report.indexed} images and {report.objects} objects; "
        f"{report.skipped} unchanged, {report.failed} failed, {report.removed} removed"
    ]
    lines += [f"  failed: {failure.path}: {failure.error}" for failure in report.failures[:20]]
    if report.failed > 20:
        lines.append(f"  ... {report.failed - 20} more (see `pixseek info`)")
    return "\n".join(lines)


class TqdmProgress:
    """Progress bar with images/s and ETA, on stderr so stdout stays parseable."""

    def __init__(self, stream: TextIO = sys.stderr, enabled: bool = True) -> None:
        self.stream = stream
        self.enabled = enabled
        self.bar: Any = None

    def start(self, total: int | None) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="img", file=self.stream, dynamic_ncols=True)

    def advance(self, report: IngestReport) -> None:
        if self.bar is None:
            return
        self.bar.update(report.seen - self.bar.n)
        self.bar.set_postfix(indexed=report.indexed, failed=report.failed, refresh=False)

    def finish(self, report: IngestReport) -> None:
        if self.bar is not None:
            self.advance(report)
            self.bar.close()


class ViewsBar:
    """Progress of the views duplicates (or a first unmatched match query) embeds, on
    stderr; nothing when every view was kept from before."""

    def __init__(self, stream: TextIO = sys.stderr, enabled: bool = True) -> None:
        self.stream = stream
        self.enabled = enabled
        self.bar: Any = None

    def __enter__(self) -> ViewsBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def update(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="views", unit="img", file=self.stream)
        self.bar.update(done - self.bar.n)


class FilesBar:
    """Progress over the files a command works through, on stderr; ``write`` prints a
    result to stdout without tearing the bar."""

    def __init__(self, total: int, enabled: bool = True, stream: TextIO = sys.stderr) -> None:
        self.bar: Any = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="match", unit="file", file=stream)

    def __enter__(self) -> FilesBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def write(self, text: str, stream: TextIO | None = None) -> None:
        """``text`` on ``stream`` (stdout by default) without tearing the bar."""
        stream = stream or sys.stdout
        if self.bar is None:
            print(text, file=stream)
        else:
            self.bar.write(text, file=stream)


class TrainBar:
    """Training progress: one bar per epoch with the running loss."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        self.stream = stream
        self.bar: Any = None
        self.current = 0

    def step(self, epoch: int, loss: float) -> None:
        from tqdm import tqdm

        if epoch != self.current:
            self.close()
            self.bar = tqdm(desc=f"epoch {epoch}", unit="batch", file=self.stream, leave=False)
            self.current = epoch
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def epoch(self, stats: Any) -> None:
        self.close()
        print(
            f"epoch {stats.epoch}: loss {stats.loss:.4f}, "
            f"validation {stats.metric} {stats.score:.3f}",
            file=self.stream,
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def train_text(report: Any) -> str:
    return (
        f"saved the model of epoch {report.best_epoch} (validation {report.metric} "
        f"{report.best_score:.3f}; {report.train_pairs} training {report.unit}, "
        f"{report.val_pairs} held out) to {report.out}\n"
        f"use it with --model {report.out}"
    )


def eval_text(report: Any) -> str:
    def row(values: dict[int, float]) -> str:
        return "  ".join(f"R@{k} {v:.3f}" for k, v in values.items())

    lines = [
        f"{report.images} images, {report.texts} texts",
        f"text→image  {row(report.text_to_image)}",
        f"image→text  {row(report.image_to_text)}",
    ]
    if report.zero_shot_accuracy is not None:
        lines.append(f"zero-shot label accuracy {report.zero_shot_accuracy:.3f}")
    return "\n".join(lines)


def eval_json(report: Any) -> str:
    return json.dumps(asdict(report), indent=2)


def _score_cells(score: Any) -> list[str]:
    feedback, truth = score.feedback, score.truth
    ndcg = f"{feedback.ndcg_at_10:.3f}" if feedback.ndcg_at_10 is not None else "-"
    recall = f"{feedback.recall.get(5, 0.0):.3f}" if feedback.recall else "-"
    t2i = f"{truth.text_to_image.get(5, 0.0):.3f}" if truth is not None else "-"
    speed = f"{score.images_per_second:.1f}" if score.images_per_second is not None else "-"
    return [
        ndcg,
        recall,
        str(feedback.queries),
        str(feedback.judgements),
        t2i,
        str(score.dim),
        speed,
    ]


SCORE_HEADER = ["nDCG@10", "R@5", "queries", "judgements", "text→image R@5", "dim", "images/s"]


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def compare_text(report: Any) -> str:
    rows = [["", "index", *SCORE_HEADER]]
    rows.append(["active", report.active.index, *_score_cells(report.active)])
    rows.append(["other", report.shadow.index, *_score_cells(report.shadow)])
    if report.activated:
        verdict = f"{report.shadow.index!r} scores higher: it is now the active index"
    elif report.better:
        verdict = f"{report.shadow.index!r} scores higher (--activate-if-better switches to it)"
    else:
        verdict = (
            f"{report.shadow.index!r} does not score higher: {report.active.index!r} stays active"
        )
    return _table(rows) + "\n" + verdict


def ranking_text(scores: Any, active: str) -> str:
    rows = [["rank", "index", "model", *SCORE_HEADER]]
    for number, score in enumerate(scores, 1):
        mark = "*" if score.index == active else ""
        rows.append([f"{number}{mark}", score.index, score.model, *_score_cells(score)])
    if any(s.by_truth for s in scores):
        images = next((s.truth.images for s in scores if s.truth is not None), 0)
        basis = f"text→image R@5 on the same {images} images (candidates have no judgements)"
    else:
        basis = "held-out nDCG@10, else text→image R@5"
    return _table(rows) + f"\n* active; ranked by {basis}"
