"""`folder:` datasets too big for memory, streamed from disk by DataLoader worker processes.

Every other dataset (and a folder that fits) is a uint8 tensor in memory, batched by indexing.
A streamed folder's training split is a `StreamingImages`: a list of files that behaves like that
tensor where the training loop needs it (len, shape, dtype, indexing to a subset) and is decoded
batch by batch in worker processes (`iter_batches`). Batches hold exactly the pixels the in-memory
loader would produce, in the same order, so a streamed run trains bit-identically to an in-memory
one. The test split (and the validation split's batches, read as they are needed) come from the
same files; the test split is held in memory for evaluation.

Streaming is chosen by `--stream auto` (the default) when the decoded images would exceed the
memory budget: `--memory-budget`, else $AEKIT_MEMORY_BUDGET, else half the available memory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from aekit.errors import ConfigError, DataError

STREAM_MODES = ("auto", "always", "never")
# A folder split's test share and seed, as in the in-memory folder loader.
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_bytes(text: str | int | None) -> int | None:
    """'512M', '2G', '1048576' -> bytes; None/'' -> None."""
    if text is None or text == "":
        return None
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", str(text).lower())
    if not m:
        raise ConfigError(f"memory budget {text!r}: expected a size such as 512M or 2G")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def memory_budget(explicit: str | int | None = None) -> int:
    """Bytes a dataset may take in memory before it is streamed."""
    given = parse_bytes(explicit) or parse_bytes(os.environ.get("AEKIT_MEMORY_BUDGET"))
    if given:
        return given
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 // 2
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return 4 << 30


class StreamingImages:
    """uint8 images (N, C, H, W) that live in files; indexing gives a subset, `read` decodes."""

    dtype = torch.uint8
    ndim = 4

    def __init__(self, paths: Sequence[Path], channels: int, size: tuple[int, int]) -> None:
        self.paths = list(paths)
        self.channels = int(channels)
        self.size = (int(size[0]), int(size[1]))

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.paths), self.channels, *self.size))

    @property
    def nbytes(self) -> int:
        return len(self.paths) * self.channels * self.size[0] * self.size[1]

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return f"StreamingImages({len(self)} files, shape={tuple(self.shape)})"

    def __getitem__(self, index) -> StreamingImages:
        """A subset view (nothing is decoded): slice, index tensor/array or list of ints."""
        if isinstance(index, slice):
            picked = self.paths[index]
        else:
            idx = torch.as_tensor(index).reshape(-1).tolist()
            picked = [self.paths[i] for i in idx]
        return StreamingImages(picked, self.channels, self.size)

    def decode(self, i: int) -> np.ndarray:
        """Image i as uint8 (C, H, W); the same pixels the in-memory folder loader produces."""
        from aekit.data.images import load_uint8

        a = load_uint8(self.paths[i], "RGB" if self.channels == 3 else "L", self.size)
        return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)  # (C, H, W)

    def read(self, indices: Sequence[int] | None = None) -> torch.Tensor:
        """Decode now (in this process) into a uint8 tensor (B, C, H, W)."""
        idx = range(len(self)) if indices is None else indices
        out = np.empty((len(idx), self.channels, *self.size), dtype=np.uint8)
        for j, i in enumerate(idx):
            out[j] = self.decode(int(i))
        return torch.from_numpy(out)


def to_tensor(x: torch.Tensor | StreamingImages) -> torch.Tensor:
    """Images as a tensor: x itself, or a (small, already subset) stream decoded now."""
    return x if isinstance(x, torch.Tensor) else x.read()


class _Files(torch.utils.data.Dataset):
    """Map-style dataset for the DataLoader: one decoded image, or the error text (an exception
    raised inside a worker would reach the user wrapped in a traceback)."""

    def __init__(self, images: StreamingImages) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        try:
            return torch.from_numpy(np.array(self.images.decode(i), copy=True))  # writable
        except DataError as e:
            return str(e)


def _collate(items: list) -> torch.Tensor | str:
    bad = next((x for x in items if isinstance(x, str)), None)
    return bad if bad is not None else torch.stack(items)


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # decoding is the workers' job; the main process does the math
    # Ctrl-C reaches the whole process group and a scheduler's SIGTERM every process of the job:
    # the main process decides when to stop (aekit.train.preempt), and a worker that died of the
    # signal would fail the batches it still owes before the checkpoint is written.
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _loader(images: StreamingImages, batches: list[list[int]], workers: int | None):
    n = default_workers() if workers is None else workers
    # Its own generator: workers only decode, and drawing their base seed from torch's global RNG
    # would shift the random numbers a model draws (dropout, sampling) against an in-memory run,
    # and against a run resumed in the middle of an epoch (aekit.train.loop).
    return torch.utils.data.DataLoader(
        _Files(images), batch_sampler=batches, num_workers=n, collate_fn=_collate,
        worker_init_fn=_worker_init if n else None, prefetch_factor=4 if n else None,
        generator=torch.Generator().manual_seed(0))


def _checked(loader) -> Iterator[torch.Tensor]:
    for batch in loader:
        if isinstance(batch, str):
            raise DataError(f"{batch} (while streaming the training images)")
        yield batch


def iter_batches(x, order: torch.Tensor, batch_size: int, steps: int,
                 keep: slice | None = None, workers: int | None = None, start: int = 0
                 ) -> Iterator[torch.Tensor]:
    """The uint8 batches of one epoch: x[order[i*B:(i+1)*B]][keep] for start <= i < steps.

    A tensor is indexed directly (no DataLoader: indexing a uint8 tensor is faster than any
    worker); StreamingImages are decoded ahead by DataLoader workers. `start` skips the batches
    a resumed run already trained on (nothing of them is read).
    """
    chunks = [order[i * batch_size : (i + 1) * batch_size] for i in range(start, steps)]
    if keep is not None:
        chunks = [c[keep] for c in chunks]
    if isinstance(x, torch.Tensor):
        return (x[c] for c in chunks)
    return _checked(_loader(x, [c.tolist() for c in chunks], workers))


def iter_chunks(x, batch_size: int) -> Iterator[torch.Tensor]:
    """x in order, batch_size images at a time (evaluation)."""
    n = len(x)
    if isinstance(x, torch.Tensor):
        return (x[s : s + batch_size] for s in range(0, n, batch_size))
    batches = [list(range(s, min(n, s + batch_size))) for s in range(0, n, batch_size)]
    return _checked(_loader(x, batches, None))


def in_memory(x, budget: int | None = None, max_images: int = 60000) -> torch.Tensor:
    """A tensor as is; for streamed images the first ones whose uint8 pixels fit 1/16 of the
    budget: the PCA baseline makes float32/float64 copies of what it is given."""
    if isinstance(x, torch.Tensor):
        return x
    per_image = max(1, x.nbytes // max(1, len(x)))
    fits = memory_budget(budget) // 16 // per_image
    n = min(len(x), max_images, max(256, fits))  # PCA needs a few hundred images at least
    return x.read(range(n))


# --- opening a folder for streaming ---------------------------------------------------------------


def estimate_folder_bytes(root: Path, image_size: tuple[int, int] | None) -> int:
    """Decoded size of a folder dataset from the file count and the first image's header."""
    from aekit.data.folder import _scan, folder_parts
    from aekit.data.images import probe_image

    parts, _ = folder_parts(root)
    files = [p for d in parts for p in _scan(d)[0]]
    if not files:
        return 0
    (h, w), colour = probe_image(files[0])
    h, w = image_size or (h, w)
    return len(files) * h * w * (3 if colour else 1)


def folder_patch_bytes(root: Path, patch: int) -> int:
    """Bytes the patch x patch patches of every image in a folder take (aekit.data.patches),
    from the image headers alone; a folder with any colour image holds every patch in RGB."""
    from aekit.data.folder import scan_folder
    from aekit.data.patches import grid_offsets

    layout = scan_folder(root)
    channels = 3 if any(colour for _, colour in layout.headers.values()) else 1
    count = sum(len(grid_offsets(h, patch)) * len(grid_offsets(w, patch))
                for (h, w), _ in (layout.headers[f] for f in layout.files))
    return count * patch * patch * channels


def open_folder_stream(root: str | os.PathLike, image_size: tuple[int, int] | None = None):
    """A `folder:` Dataset whose train split streams (same files, order, labels and split as the
    in-memory loader); only image headers are read here, plus the test images."""
    from aekit.data.dataset import Dataset
    from aekit.data.folder import common_shape, scan_folder

    root = Path(root)
    layout = scan_folder(root)
    colour, image_size = common_shape(layout, root, image_size)
    images = StreamingImages(layout.files, 3 if colour else 1, image_size)
    y = layout.labels
    train_idx, test_idx = layout.train_idx, layout.test_idx
    if isinstance(train_idx, slice):  # pre-split: the streamed images index with tensors
        n_train = train_idx.stop
        train_idx = torch.arange(n_train)
        test_idx = torch.arange(n_train, len(layout.files))
    return Dataset(f"folder:{root}", images[train_idx], None if y is None else y[train_idx],
                   images[test_idx].read(), None if y is None else y[test_idx], layout.classes,
                   layout.skipped)


def load_training_dataset(name: str, image_size=None, stream: str = "auto",
                          budget: str | int | None = None, log=None, patch: int = 0):
    """load_dataset, except that a `folder:` dataset is streamed when asked (`always`) or when its
    decoded images exceed the memory budget (`auto`). Patches (`patch`) are cut in memory: with
    `auto`, a folder whose patches exceed the budget is refused before anything is decoded."""
    from aekit.data import load_dataset
    from aekit.data.units import parse_image_size

    if stream not in STREAM_MODES:
        raise ConfigError(f"--stream {stream!r}: use one of {', '.join(STREAM_MODES)}")
    scheme, sep, rest = str(name).strip().partition(":")
    is_folder = bool(sep) and scheme == "folder" and rest.strip()
    root = Path(os.path.expanduser(rest.strip())) if is_folder else None
    if stream == "always" and not is_folder:
        raise ConfigError(f"--stream always works with folder:DIR datasets only (got {name!r}); "
                          "the others are loaded into memory")
    if patch:
        if stream == "always":
            raise ConfigError("--stream always: patches (--patch) are cut in memory; use "
                              "--stream auto")
        if stream == "auto" and root is not None and root.is_dir():
            need, limit = folder_patch_bytes(root, patch), memory_budget(budget)
            if need > limit:  # better said now than by the out-of-memory killer mid-load
                raise DataError(
                    f"folder:{root}: its {patch}x{patch} patches take ~{need / 2**20:,.0f} MiB, "
                    f"over the memory budget of {limit / 2**20:,.0f} MiB, and patches are cut "
                    "in memory; train on a part of the folder, or raise --memory-budget "
                    "(--stream never skips this check)")
        return load_dataset(name, image_size, patch=patch)
    if stream == "never" or not is_folder:
        return load_dataset(name, image_size)
    size = parse_image_size(image_size)
    if stream == "auto":
        if not root.is_dir():
            return load_dataset(name, image_size)  # the loader's own error message
        need, limit = estimate_folder_bytes(root, size), memory_budget(budget)
        if need <= limit:
            return load_dataset(name, image_size)
        if log:
            log(f"folder:{root}: ~{need / 2**20:,.0f} MiB decoded exceeds the memory budget of "
                f"{limit / 2**20:,.0f} MiB; streaming the training images from disk")
    return open_folder_stream(root, size)


def sample_images(x, n: int, max_values: int | None = None) -> torch.Tensor:
    """Up to n evenly spaced images of x (a uint8 tensor or streamed images) as a tensor, and
    no more than max_values pixel values in all (at least 16 images)."""
    total = len(x)
    if total == 0 or len(x.shape) != 4:
        return torch.empty(0)
    if max_values:
        per_image = max(1, int(x.shape[1]) * int(x.shape[2]) * int(x.shape[3]))
        n = min(n, max(16, max_values // per_image))
    idx = torch.linspace(0, total - 1, min(n, total)).round().long().unique()
    if isinstance(x, torch.Tensor):
        return x[idx]
    return x.read(idx.tolist())  # streamed images (StreamingImages, above)
