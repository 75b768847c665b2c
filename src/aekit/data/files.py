"""Shared plumbing for commands that process many image files (reconstruct, denoise, compress...).

Good files are all processed; bad ones (unreadable, or not the model's channels/size without
--resize: `ModelInputs`) are listed on stderr and the command exits 1; nothing processed is an
error (exit 2). Files are read in chunks so a folder of any size runs in bounded memory.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from aekit.errors import DataError

if TYPE_CHECKING:  # numpy is imported where pixels are decoded: listing files stays light
    import numpy as np

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


def shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(int(s)) for s in shape)


class ModelInputs:
    """Image files read for a model that takes (C, H, W) images, under the command line's one
    rule for files that do not match it:

    - a file of another channel count or size is skipped and listed, with the flag that would
      take it (`--resize`); with `resize=True` it is converted/resized instead, and `finish`
      says so once;
    - an unreadable file is skipped and listed;
    - the command processes every other file and exits 1 when any was skipped (`finish`),
      or ends with an error (exit 2) when nothing could be processed (`require_some`, `finish`).

    `keeps_size=True` is for commands that work at each image's own size (restoration, swap):
    only the channel count has to match. `tiles=True` is for commands that process an image
    larger than the model's size (at least H x W, larger on one side) in overlapping tiles
    (reconstruct, anomaly score; aekit.data.tiles): such a file of the right channel count is
    taken at its own size (unless `resize`, which resizes it), and `finish` says so once.
    Headers are read up front (`files`, `sizes`); pixels are decoded batch by batch
    (`batches`), so a folder of any size runs in bounded memory. `keep_alpha=True` is for
    commands that write an image per input (reconstruct, restoration, swap): each decoded file's
    alpha channel is kept until `take_alpha` hands it to the writer.
    """

    def __init__(self, items: Sequence[str | Path], shape: Sequence[int], resize: bool = False,
                 keeps_size: bool = False, model: str = "the model", tiles: bool = False,
                 keep_alpha: bool = False) -> None:
        from aekit.data.tiles import is_larger
        from aekit.errors import ConfigError

        c, h, w = (int(s) for s in shape)
        if c not in (1, 3):
            raise ConfigError(f"{model} takes {c}-channel images; image files are grey (1 "
                              "channel) or colour (3)")
        self.shape, self.resize, self.keeps_size = (c, h, w), resize, keeps_size
        self.tiles = tiles and not resize and not keeps_size
        self.bad: list[tuple[str, str]] = []  # in input order
        self.files: list[Path] = []
        self.sizes: list[tuple[int, int]] = []
        self.converted = 0
        self.tiled = 0  # larger images taken at their own size, processed in tiles
        # With keep_alpha: alpha channels of the files decoded so far and not yet taken
        # (`take_alpha`); the models see colour only, writers put the transparency back.
        self.keep_alpha = keep_alpha
        self._alphas: dict[str, np.ndarray] = {}
        for p in collect_paths([str(p) for p in items]):
            probed, bad = probe_files([p])
            if bad:
                self.bad += bad
                continue
            _, hw, colour = probed[0]
            have = 3 if colour else 1
            other = have != c or (not keeps_size and tuple(hw) != (h, w))
            if other and have == c and self.tiles and is_larger(hw, (h, w)):
                other = False
                self.tiled += 1
            if other and not resize:
                self.bad.append((str(p), self._mismatch(have, hw, model)))
                continue
            if other:
                self.converted += 1
            self.files.append(p)
            self.sizes.append(tuple(hw))

    def _mismatch(self, have: int, hw: tuple[int, int], model: str) -> str:
        c, h, w = self.shape
        if self.keeps_size:
            return (f"image is {shape_text((have, *hw))} but {model} takes {c}-channel images; "
                    "pass --resize to convert")
        larger = " (or larger, in tiles)" if self.tiles else ""
        return (f"image is {shape_text((have, *hw))} but {model} takes {shape_text(self.shape)}"
                f"{larger}; pass --resize to convert and resize")

    @property
    def mode(self) -> str:
        return "L" if self.shape[0] == 1 else "RGB"

    def require_some(self) -> None:
        """Nothing usable at all: list every bad file and end with an error (exit 2)."""
        if self.files:
            return
        _no_image_left(self.bad)

    def batches(self, batch_size: int = 256) -> Iterator[tuple]:
        """Yield (uint8 (B, C, H, W) at the model's size, their paths as str) chunk by chunk, in
        file order; with `tiles`, a larger image comes alone at its own size ((1, C, H', W')).
        A file whose header was fine but whose pixels are not is added to `bad`."""
        import numpy as np
        import torch

        c, h, w = self.shape
        for start in range(0, len(self.files), batch_size):
            arrays, good = [], []
            chunk = range(start, min(start + batch_size, len(self.files)))
            for i in chunk:
                p, own = self.files[i], self.tiles and tuple(self.sizes[i]) != (h, w)
                a = self._load(p, None if own else (h, w))
                if a is None:
                    continue
                a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)  # (C, H, W)
                if own:
                    if good:
                        yield torch.from_numpy(np.stack(arrays)), good
                        arrays, good = [], []
                    yield torch.from_numpy(np.array(a))[None], [str(p)]
                    continue
                arrays.append(a)
                good.append(str(p))
            if good:
                yield torch.from_numpy(np.stack(arrays)), good

    def load_own_size(self, path: str | Path):
        """One usable file as float32 (C, H, W) in [0, 1] at its own size, in the model's channel
        count (commands with `keeps_size`); None, with the file added to `bad`, when its pixels
        cannot be decoded."""
        import numpy as np
        import torch

        a = self._load(path, None)
        if a is None:
            return None
        a = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)  # (C, H, W)
        return torch.from_numpy(a.astype(np.float32) / 255.0)

    def _load(self, path: str | Path, size: tuple[int, int] | None) -> np.ndarray | None:
        """uint8 (H, W[, 3]) of one file (with keep_alpha, its alpha kept for `take_alpha`);
        None, with the file added to `bad`, when the header was fine but the pixels are not."""
        from aekit.data.images import load_uint8, load_with_alpha

        try:
            if self.keep_alpha:
                a, alpha = load_with_alpha(path, self.mode, size)
            else:
                a, alpha = load_uint8(path, self.mode, size), None
        except DataError as e:
            self.bad.append((str(path), str(e).removeprefix(f"{path}: ")))
            return None
        if alpha is not None:
            self._alphas[str(path)] = alpha
        return a

    def take_alpha(self, path: str | Path) -> np.ndarray | None:
        """The alpha channel (uint8 (H, W)) of a decoded file, once; None when it is opaque (or
        without keep_alpha)."""
        return self._alphas.pop(str(path), None)

    def float_batches(self, batch_size: int = 256) -> Iterator[tuple]:
        """As `batches`, as float32 in [0, 1]."""
        for x, good in self.batches(batch_size):
            yield x.float().div_(255.0), good

    def read_all(self):
        """(float32 (N, C, H, W) in [0, 1] of every usable file, their paths); an error when no
        file could be read."""
        import torch

        parts, good = [], []
        for x, names in self.float_batches():
            parts.append(x)
            good += names
        if not good:
            _no_image_left(self.bad)
        return torch.cat(parts), good

    def finish(self, done: int) -> int:
        """After processing `done` files: say once how many were converted, list the skipped
        ones; exit code 1 when any was skipped, 0 otherwise. Nothing done is an error (exit 2)."""
        if self.converted and done:
            what = (f"converted to {self.shape[0]} channel(s)" if self.keeps_size
                    else f"converted/resized to {shape_text(self.shape)}")
            print(f"aekit: {self.converted} image(s) {what}", file=sys.stderr)
        if self.tiled and done:
            print(f"aekit: {self.tiled} image(s) larger than {shape_text(self.shape[1:])} "
                  "processed in overlapping tiles", file=sys.stderr)
        if not done:
            _no_image_left(self.bad)
        return report_bad(self.bad, done)


def _no_image_left(bad: Sequence[tuple[str, str]]) -> None:
    """Raise the error for a batch where no file could be used: the one file's own problem, or
    every file listed on stderr and a summary."""
    if len(bad) == 1:
        raise DataError(f"{bad[0][0]}: {bad[0][1]}")
    for path, reason in bad:
        print(f"aekit: skipped {path}: {reason}", file=sys.stderr)
    raise DataError(f"none of the {len(bad)} image(s) could be used (listed above)")


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


def report_bad(bad: Sequence[tuple], processed: int) -> int:
    """Print skipped files on stderr; exit code 1 if any, else 0."""
    for path, reason in bad:
        print(f"aekit: skipped {path}: {reason}", file=sys.stderr)
    if bad:
        print(f"aekit: {processed} file(s) done, {len(bad)} skipped", file=sys.stderr)
        return 1
    return 0
