"""`make demo`: train the default conv autoencoder (latent 32) and show how it compares with PCA.

Fashion-MNIST when its Debian package is installed, else scikit-learn's bundled digits (said so).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

DEMO_EPOCHS = int(os.environ.get("AEKIT_DEMO_EPOCHS", "6"))


def main() -> int:
    from aekit.cli import main as cli_main
    from aekit.data import list_datasets

    available = {name: ok for name, _, ok in list_datasets()}
    dataset = "fashion-mnist"
    if not available.get("fashion-mnist"):
        dataset = "digits"
        print("Fashion-MNIST is not installed (needs root: apt-get install dataset-fashion-mnist);"
              " the demo uses scikit-learn's 8x8 digits instead.", file=sys.stderr)
    out = Path("runs/demo")
    if (out / "config.json").exists():
        # A previous demo (finished or interrupted): start fresh so the numbers are this run's.
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out.rename(out.with_name(f"demo-{stamp}"))
        print(f"previous runs/demo kept as runs/demo-{stamp}", file=sys.stderr)
    epochs = DEMO_EPOCHS if dataset == "fashion-mnist" else 60
    code = cli_main(["train", "--model", "conv", "--latent-dim", "32", "--dataset", dataset,
                     "--epochs", str(epochs), "--out", str(out)])
    if code == 0:
        print(f"pictures: {out / 'reconstructions.png'}  {out / 'loss.png'}")
        print(f"metrics:  {out / 'metrics.json'}")
        # The collapse check's verdict, repeated last so it cannot scroll away unnoticed.
        warnings = json.loads((out / "metrics.json").read_text()).get("warnings") or []
        for warning in warnings:
            print(f"NOTE: this run did not train well: {warning}")
    return code


if __name__ == "__main__":
    sys.exit(main())
