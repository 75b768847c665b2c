"""`aekit report RUN [RUN...] -o report.html`: one self-contained HTML page for runs side by side.

Everything is inline: images are base64 data URIs and a Content-Security-Policy forbids any
fetch, so the file can be mailed or archived and opens offline. The page shows an overview table,
the loss curves of all runs on one plot, then per run: config, metrics vs baselines,
reconstructions, a latent picture, and whatever else the run folder holds — extra metrics.json
sections (restoration, VAE bounds, ...), other JSON files (anomaly detectors, few-label results,
codec rate points: any list of points with `bpp` and `psnr` is also drawn as an RD curve) and
other images, each rendered generically so new files need no change here.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aekit.errors import AekitError, RunError
from aekit.io import atomic_write_text

# metrics.json keys with their own section; every other key is rendered generically.
_SHOWN = {"model", "dataset", "latent_dim", "code_size", "parameters", "epochs", "best_epoch",
          "stopped_early", "train_seconds", "train_images_per_second", "test", "baselines",
          "history", "environment", "corrupt", "corrupted_input"}
_IMAGE_SUFFIXES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                   ".gif": "image/gif", ".webp": "image/webp"}
_MAX_ROWS = 60
_LATENT_IMAGES = 2000

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1d2330;
background:#f6f7f9}h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px}
h3{font-size:16px;margin:0 0 6px}h4{font-size:14px;margin:16px 0 6px;color:#3b4457}
h5{font-size:13px;margin:10px 0 4px;color:#56607a}.sub{color:#5f6b80;margin:0 0 16px}
table{border-collapse:collapse;margin:4px 0 8px;background:#fff;font-variant-numeric:tabular-nums}
td,th{border:1px solid #d9dde5;padding:3px 8px;text-align:right;vertical-align:top}
th{background:#eef1f6}td:first-child,th:first-child{text-align:left}
.runs{display:grid;gap:16px;grid-template-columns:repeat(var(--n),minmax(360px,1fr));
overflow-x:auto}.card{background:#fff;border:1px solid #d9dde5;border-radius:8px;padding:14px;
min-width:0}img{max-width:100%;height:auto;display:block;margin:4px 0;image-rendering:auto}
figure{margin:6px 0 12px}figcaption{color:#5f6b80;font-size:12px}.note{background:#fff7e0;
border:1px solid #f0d58a;border-radius:6px;padding:6px 10px;margin:6px 0;font-size:13px}
.good{color:#11753a;font-weight:600}.bad{color:#a32020;font-weight:600}
details>summary{cursor:pointer;font-weight:600;margin:6px 0}code{font-size:12px}
.wide{overflow-x:auto}footer{color:#7a8497;font-size:12px;margin-top:28px}
"""


def esc(v: Any) -> str:
    return html.escape(str(v), quote=True)


def fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10000 else str(v)
    return str(v)


def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], raw: bool = False) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c if raw else esc(fmt(c))}</td>" for c in r)
                   + "</tr>" for r in rows)
    return f'<div class="wide"><table><tr>{head}</tr>{body}</table></div>'


def render_json(obj: Any, depth: int = 0) -> str:
    """Any JSON value as tables: flat dicts as key/value, dicts of flat dicts and lists of flat
    dicts as one table each, nested structure as sub-headings (shallow, capped in length)."""
    if _scalar(obj):
        return f"<p>{esc(fmt(obj))}</p>"
    if isinstance(obj, list):
        if all(isinstance(r, dict) and all(_scalar(v) for v in r.values()) for r in obj) and obj:
            cols = list(dict.fromkeys(k for r in obj for k in r))
            rows = [[r.get(c) for c in cols] for r in obj[:_MAX_ROWS]]
            more = f"<p>… {len(obj) - _MAX_ROWS} more rows</p>" if len(obj) > _MAX_ROWS else ""
            return table(cols, rows) + more
        if all(_scalar(v) for v in obj):
            shown = ", ".join(fmt(v) for v in obj[:_MAX_ROWS])
            return f"<p>{esc(shown)}{' …' if len(obj) > _MAX_ROWS else ''}</p>"
        return "".join(render_json(v, depth + 1) for v in obj[:10])
    flat = {k: v for k, v in obj.items() if _scalar(v)}
    nested = {k: v for k, v in obj.items() if not _scalar(v)}
    parts = [table(["key", "value"], list(flat.items()))] if flat else []
    matrix = {k: v for k, v in nested.items()
              if isinstance(v, dict) and v and all(_scalar(x) for x in v.values())}
    if len(matrix) >= 2:  # e.g. {"class 0": {"auroc": .., "ap": ..}, "class 1": {...}}
        cols = list(dict.fromkeys(c for v in matrix.values() for c in v))
        parts.append(table(["", *cols], [[k, *(v.get(c) for c in cols)]
                                         for k, v in list(matrix.items())[:_MAX_ROWS]]))
        nested = {k: v for k, v in nested.items() if k not in matrix}
    for k, v in nested.items():
        inner = render_json(v, depth + 1) if depth < 4 else f"<p>{esc(json.dumps(v)[:300])}</p>"
        parts.append(f"<h5>{esc(k)}</h5>{inner}")
    return "".join(parts)


def rd_series(obj: Any, path: str = "") -> dict[str, list[tuple[float, float]]]:
    """Every list of points holding numeric `bpp` and `psnr` inside a JSON value, by path; a
    `method`/`codec`/`name`/`format` field splits a list into several curves."""
    found: dict[str, list[tuple[float, float]]] = {}
    if isinstance(obj, list):
        pts = [p for p in obj if isinstance(p, dict) and isinstance(p.get("bpp"), (int, float))
               and isinstance(p.get("psnr"), (int, float))]
        for p in pts:
            label = next((str(p[k]) for k in ("method", "codec", "name", "format") if k in p),
                         path or "points")
            found.setdefault(label, []).append((float(p["bpp"]), float(p["psnr"])))
        if not pts:
            for i, v in enumerate(obj[:50]):
                found.update(rd_series(v, f"{path}[{i}]"))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            found.update(rd_series(v, f"{path}.{k}" if path else str(k)))
    return found


def img_tag(data: bytes, alt: str, notes: list[str], mime: str = "image/png") -> str:
    """An <img> with the bytes inline, after checking that they decode (else a note)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
    except Exception as e:  # noqa: BLE001  any decoder failure: leave the image out, say so
        notes.append(f"{alt}: not a decodable image ({type(e).__name__}); left out")
        return f'<p class="note">{esc(alt)}: image could not be decoded; left out</p>'
    b64 = base64.b64encode(data).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:{mime};base64,{b64}">'


def figure(data: bytes, caption: str, notes: list[str], mime: str = "image/png") -> str:
    return f"<figure>{img_tag(data, caption, notes, mime)}<figcaption>{esc(caption)}" \
           "</figcaption></figure>"


def _fig_bytes(fig) -> bytes:
    from aekit.eval.plots import pyplot

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    pyplot().close(fig)
    return buf.getvalue()


def loss_plot(runs: list[dict]) -> bytes | None:
    """Train (dashed) and validation (solid) loss of every run on one log-scale axis."""
    from aekit.eval.plots import pyplot

    curves = [(r["label"], r["metrics"].get("history") or []) for r in runs if r["metrics"]]
    curves = [(name, h) for name, h in curves if isinstance(h, list) and h]
    if not curves:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for i, (name, hist) in enumerate(curves):
        color = plt.get_cmap("tab10")(i % 10)
        for key, style, what in (("train_loss", "--", "train"), ("val_loss", "-", "val")):
            pts = [(h.get("epoch"), h.get(key)) for h in hist if isinstance(h, dict)
                   and isinstance(h.get(key), (int, float)) and h.get(key) > 0]
            if pts:
                ax.plot(*zip(*pts, strict=True), style, marker="o", ms=3, color=color,
                        label=f"{name} ({what})")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    return _fig_bytes(fig)


def rd_plot(series: dict[str, list[tuple[float, float]]], title: str) -> bytes:
    from aekit.eval.plots import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, pts in series.items():
        pts = sorted(pts)
        ax.plot(*zip(*pts, strict=True), "o-", ms=3, label=name)
    ax.set_xlabel("bits per pixel")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _fig_bytes(fig)


def latent_picture(run_dir: Path) -> tuple[bytes, str]:
    """Encode up to 2,000 test images of the run's dataset and plot the codes by label;
    returns (PNG bytes, caption)."""
    import tempfile

    from aekit.core.io import load_model
    from aekit.core.training import run_dataset
    from aekit.eval.plots import plot_latent
    from aekit.represent.embedding import embed

    model, run = load_model(run_dir)
    cfg = run.model_cfg
    ds = run_dataset(run.train_cfg, image_size=(cfg.height, cfg.width))
    x = ds.test_x[:_LATENT_IMAGES]
    z = embed(model, x)  # (N, D)
    labels = ds.test_y[:_LATENT_IMAGES].numpy() if ds.test_y is not None else None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "latent.png"
        plot_latent(z, labels, path, f"{cfg.name}: latent space ({z.shape[1]}-d)",
                    class_names=ds.classes)
        by = " coloured by label" if labels is not None else ""
        return path.read_bytes(), f"codes of {len(x):,} test images of {ds.name}{by}"


def load_run(path: str | Path, notes: list[str]) -> dict:
    """What the page needs from one run folder; RunError when it is not a run."""
    from aekit.core.io import read_config, read_metrics

    path = Path(path)
    run = read_config(path)  # RunError: no such folder / not a run folder
    metrics = read_metrics(path) if (path / "metrics.json").is_file() else {}
    if not isinstance(metrics, dict):
        raise RunError(f"{path}/metrics.json: expected a JSON object")
    if not metrics:
        notes.append(f"{path}: no metrics.json (training unfinished?); showing the config only")
    extras = {}
    for f in sorted(path.glob("*.json")):
        if f.name in ("config.json", "metrics.json"):
            continue
        try:
            extras[f.name] = json.loads(f.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            notes.append(f"{f}: unreadable JSON ({type(e).__name__}); left out")
    images = [f for f in sorted(path.iterdir()) if f.suffix.lower() in _IMAGE_SUFFIXES
              and f.is_file() and not f.name.startswith(".")]
    return {"path": path, "label": path.name or str(path), "run": run, "metrics": metrics,
            "extras": extras, "images": images}


def _quality_rows(m: dict) -> list[list[Any]]:
    rows = []
    if isinstance(m.get("test"), dict):
        rows.append([f"aekit {m.get('model', '')}".strip(), m["test"]])
    for name, b in (m.get("baselines") or {}).items():
        if isinstance(b, dict):
            label = f"{name.upper()}-{b['k']}" if "k" in b else name
            rows.append([label, b])
    if isinstance(m.get("corrupted_input"), dict):
        rows.append([f"corrupted input ({m.get('corrupt', '')})", m["corrupted_input"]])
    return [[label, q.get("mse"), q.get("psnr"), q.get("ssim")] for label, q in rows]


def run_card(r: dict, latent: bool, notes: list[str]) -> str:
    m, run, label = r["metrics"], r["run"], r["label"]
    out = [f"<h3>{esc(label)}</h3><p class='sub'><code>{esc(r['path'])}</code></p>"]
    out.append("<details><summary>config</summary>"
               f"<h5>model</h5>{render_json(run.model_cfg.to_dict())}"
               f"<h5>training</h5>{render_json(run.train_cfg.to_dict())}</details>")
    # A run that failed (e.g. collapsed to a constant output) must never look like a success.
    for warning in (m.get("warnings") or []) if m else []:
        out.append(f"<p class='note bad'>training problem: {esc(warning)}</p>")
    if m:
        out.append("<h4>metrics vs baselines (test set)</h4>")
        out.append(table(["", "MSE", "PSNR dB", "SSIM"], _quality_rows(m)))
        facts = [(k, m.get(k)) for k in ("latent_dim", "code_size", "parameters", "epochs",
                                         "best_epoch", "train_seconds", "train_images_per_second")
                 if k in m]
        out.append(table(["", "value"], facts))
        if isinstance(m.get("corrupted_input"), dict) and isinstance(m.get("test"), dict):
            gain = (m["test"].get("psnr") or 0) - (m["corrupted_input"].get("psnr") or 0)
            css = "good" if gain > 0 else "bad"
            out.append(f"<h4>restoration</h4><p>trained to undo <code>{esc(m.get('corrupt'))}"
                       f"</code>: output is <span class='{css}'>{gain:+.2f} dB</span> PSNR vs "
                       "the corrupted input. Grid rows: corrupted, output, clean.</p>")
    images = {f.name: f for f in r["images"]}
    if "reconstructions.png" in images:
        cap = "rows: test images, reconstructions" if "corrupted_input" not in m else \
            "rows: corrupted input, output, clean"
        cap += " (domain A's rows, then B's)" if "swaps.png" in images else ""
        out.append("<h4>reconstructions</h4>"
                   + figure(images.pop("reconstructions.png").read_bytes(), cap, notes))
    if "swaps.png" in images:  # a two-domain (swap) run's translations
        out.append("<h4>domain translation</h4>" + figure(images.pop("swaps.png").read_bytes(),
                   "rows: A test images, A→B, B test images, B→A", notes))
    images.pop("loss.png", None)  # all runs' curves are on the shared plot
    own_latent = [n for n in images if "latent" in n.lower()]
    if own_latent:
        out.append("<h4>latent space</h4>" + "".join(
            figure(images.pop(n).read_bytes(), n, notes) for n in own_latent))
    elif latent:
        try:
            png, caption = latent_picture(r["path"])
            out.append("<h4>latent space</h4>" + figure(png, caption, notes))
        except (AekitError, OSError, ValueError, RuntimeError) as e:
            notes.append(f"{r['path']}: no latent picture ({str(e).splitlines()[0][:200]})")
    for key in sorted(k for k in m if k not in _SHOWN):
        out.append(f"<h4>{esc(key)}</h4>{render_json(m[key])}")
    for name, obj in r["extras"].items():
        series = rd_series(obj)
        body = figure(rd_plot(series, name), f"rate–distortion points in {name}", notes) \
            if series else ""
        out.append(f"<h4>{esc(name)}</h4>{body}{render_json(obj)}")
    for name, f in images.items():
        mime = _IMAGE_SUFFIXES[f.suffix.lower()]
        out.append(f"<h4>{esc(name)}</h4>" + figure(f.read_bytes(), name, notes, mime))
    env = m.get("environment")
    if isinstance(env, dict):
        out.append("<p class='sub'>" + esc(", ".join(f"{k} {v}" for k, v in env.items()))
                   + "</p>")
    return f"<section class='card'>{''.join(out)}</section>"


def overview(runs: list[dict]) -> str:
    rows = []
    for r in runs:
        m = r["metrics"]
        test = m.get("test") if isinstance(m.get("test"), dict) else {}
        pca = (m.get("baselines") or {}).get("pca") or {}
        gain = test.get("psnr") - pca.get("psnr") \
            if isinstance(test.get("psnr"), (int, float)) \
            and isinstance(pca.get("psnr"), (int, float)) else None
        rows.append([r["label"], r["run"].model_cfg.name, r["run"].train_cfg.dataset,
                     m.get("code_size", r["run"].model_cfg.latent_dim), m.get("parameters"),
                     m.get("epochs"), m.get("train_seconds"), m.get("train_images_per_second"),
                     test.get("mse"), test.get("psnr"), test.get("ssim"), pca.get("psnr"), gain])
    return table(["run", "model", "dataset", "code size", "parameters", "epochs", "train s",
                  "train img/s", "MSE", "PSNR dB", "SSIM", "PCA PSNR dB", "Δ vs PCA dB"], rows)


def build_report(run_dirs: Sequence[str | Path], latent: bool = True, title: str = ""
                 ) -> tuple[str, list[str]]:
    """(HTML text, notes about what was left out) for one or more run folders."""
    from aekit import __version__

    notes: list[str] = []
    runs = [load_run(p, notes) for p in run_dirs]
    labels = [r["label"] for r in runs]
    for r in runs:  # two runs named alike (a/run, b/run): show the parent too
        if labels.count(r["label"]) > 1:
            r["label"] = f"{r['path'].parent.name}/{r['label']}"
    title = title or ("aekit report: " + ", ".join(r["label"] for r in runs))
    loss = loss_plot(runs)
    body = [f"<h1>{esc(title)}</h1><p class='sub'>{len(runs)} run(s) · aekit {esc(__version__)}"
            f" · {datetime.datetime.now():%Y-%m-%d %H:%M}</p>",
            "<h2>overview</h2>", overview(runs)]
    if loss is not None:
        body += ["<h2>loss curves</h2>",
                 figure(loss, "training (dashed) and validation (solid) loss per epoch", notes)]
    body += ["<h2>runs</h2>", f"<div class='runs' style='--n:{min(len(runs), 3)}'>",
             *(run_card(r, latent, notes) for r in runs), "</div>"]
    if notes:
        body.append("<h2>notes</h2>" + "".join(f"<p class='note'>{esc(n)}</p>" for n in notes))
    body.append("<footer>self-contained: every image is embedded; the page loads nothing from "
                "the network.</footer>")
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
            "img-src data:; style-src 'unsafe-inline'\">"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{esc(title)}</title><link rel='icon' href='data:,'>"
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n")
    return page, notes


def write_report(run_dirs: Sequence[str | Path], out: str | Path, latent: bool = True,
                 title: str = "") -> tuple[Path, list[str]]:
    """Build the report and write it atomically; returns (path, notes)."""
    page, notes = build_report(run_dirs, latent, title)
    out = Path(out)
    if out.is_dir():
        raise RunError(f"-o {out}: is a folder; give a file name such as report.html")
    atomic_write_text(out, page)
    return out, notes
