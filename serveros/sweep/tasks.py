"""What a worker runs for one point: :class:`Task` and :func:`run_task`.

A task carries the point and the documents' *sizes*, not an image file: a worker on another
machine cannot read the client's temporary files, so each worker process builds the image
itself (:func:`documents_image`, once per set of sizes, in a temporary folder of its own that
goes with the process). The image is a pure function of its sizes, so every worker reads the
same bytes. A task may carry a path instead (``serveros run --image``-style callers that know
every worker shares the file system).
"""
from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .version import code_version

__all__ = ["Task", "run_task", "documents_image"]

_IMAGES: dict[tuple[int, ...], str] = {}
_IMAGE_DIR: list[str] = []


@dataclass(frozen=True)
class Task:
    """One point to simulate.

    Attributes
    ----------
    point : serveros.experiments.paper.Point
        The point.
    image : tuple of int or str
        The documents' sizes (the worker builds the image) or an image every worker can read.
    pcap : str, optional
        Capture the point's frames to this file (on the worker's file system).
    waves_dir : str, optional
        The folder of RTL waveforms (``SERVEROS_WAVES=1``).
    """

    point: object
    image: tuple[int, ...] | str
    pcap: str | None = None
    waves_dir: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.image, str):
            return
        sizes = tuple(self.image)
        if not sizes or any(isinstance(n, bool) or not isinstance(n, int) or n < 0
                            for n in sizes):
            raise ValueError(f"image must be document sizes (integers >= 0) or a path, not "
                             f"{self.image!r}")
        object.__setattr__(self, "image", sizes)


def documents_image(sizes: tuple[int, ...]) -> str:
    """The documents' image holding ``sizes`` (:func:`paper.build_documents_image`), built
    once per process and kept in a temporary folder removed when the process exits."""
    from ..experiments import paper
    if sizes not in _IMAGES:
        if not _IMAGE_DIR:
            _IMAGE_DIR.append(tempfile.mkdtemp(prefix="serveros-sweep-docs-"))
            atexit.register(shutil.rmtree, _IMAGE_DIR[0], True)
        path = Path(_IMAGE_DIR[0]) / f"docs{len(_IMAGES)}.img"
        _IMAGES[sizes] = str(paper.build_documents_image(path, sizes))
    return _IMAGES[sizes]


def run_task(task: Task) -> dict:
    """Simulate ``task``'s point: ``{"rows": ..., "code_version": ...}``, the rows those of
    :func:`paper.run_point` or, if the point raised, its failed rows (a point's failure is a
    result, not the worker's; the version lets the client refuse a worker running other
    code)."""
    from ..experiments import paper
    image = task.image if isinstance(task.image, str) else documents_image(task.image)
    rows = paper.run_point_or_failed(task.point, image, pcap_path=task.pcap,
                                     waves_dir=task.waves_dir)
    return {"rows": rows, "code_version": code_version()}
