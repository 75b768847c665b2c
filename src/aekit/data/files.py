"""Shared plumbing for commands that process many image files (reconstruct, denoise, compress...).

Good files are all processed; bad ones are listed on stderr and the command exits 1. Files are read
in chunks so a folder of any size runs in bounded memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from aekit.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}


def collect_paths(items: Sequence[str]) -> list[Path]:
    """Expand folders into their image files (sorted); files are taken as given."""
    paths: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            paths.extend(sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES
                                and q.is_file()))
        elif p.exists():
            paths.append(p)
        else:
            raise DataError(f"{item}: no such file or folder")
    if not paths:
        raise DataError(f"no images found in {', '.join(items) or '(nothing given)'}")
    return paths


def iter_image_batches(paths: Sequence[Path], channels: int, size: tuple[int, int],
                       batch_size: int = 256) -> Iterator[tuple]:
    """Yield (float tensor (B, C, H, W), good paths, bad [(path, reason)]) chunk by chunk."""
    from aekit.data.images import read_images

    for start in range(0, len(paths), batch_size):
        yield read_images(paths[start : start + batch_size], channels=channels, size=size)




def output_path(out_dir: Path, src: Path, used: set[str], suffix: str = ".png") -> Path:
    """out_dir/<stem><suffix>, made unique when two inputs share a stem."""
    name, k = f"{src.stem}{suffix}", 1
    while name in used:
        name, k = f"{src.stem}-{k}{suffix}", k + 1
    used.add(name)
    return out_dir / name


def probe_files(paths: Sequence[Path]) -> tuple[list[tuple[Path, tuple[int, int], bool]], list]:
    """Read image headers only: ([(path, (H, W), is colour)], [(bad path, reason)])."""
    from aekit.data.images import probe_image

    probed, bad = [], []
    for p in paths:
        try:
            hw, colour = probe_image(p)
        except DataError as e:
            bad.append((str(p), str(e).removeprefix(f"{p}: ")))
            continue
        probed.append((p, hw, colour))
    return probed, bad
