"""Print docs/RELIABILITY.md's figures from an AEKIT_RELIABILITY_LOG file (one JSON line per test),
totals included, so that no figure on that page is summed or copied by hand.

    python -m tests.reliability.summary rel.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _size(n: float) -> str:
    if n == 0:
        return "0"
    if n < 1 << 20:
        return f"{n / 1024:.0f} KB"
    return f"{n / (1 << 20):.1f} MB"


def _seconds(s: float) -> str:
    return "< 0.01 s" if s < 0.01 else f"{s:.2f} s"


def summarize(rows: list[dict]) -> str:
    out: list[str] = []
    for r in rows:
        if r["test"] == "kill_and_resume":
            out += [f"kill and resume: {r['trials']} trials, {r['kills']} SIGKILLs, "
                    f"by trigger {r['by_trigger']}, {r['file_versions_checked']} file versions "
                    f"parsed while training ran, reference run {r['reference_s']:.1f} s wall",
                    f"  kill moments after their process had finished: "
                    f"{sum(not k['killed'] for d in r['detail'] for k in d['kills'])}",
                    f"  problems: {sum(len(d['problems']) for d in r['detail'])}", ""]
        if r["test"] == "preempt_many":
            out += [f"preemption: {r['trials']} trials {r['by_signal']}, {r['exact']} resumed "
                    f"bit-identical, {r['mid_epoch']} stopped mid-epoch, {r['second_signal']} "
                    f"with a second signal while stopping, {r['seconds']:.0f} s; signals that "
                    f"came after training and were tried again: {r.get('late', 0)}",
                    f"  signal -> checkpoint written: median {r['checkpoint_s_median']:.3f} s, "
                    f"max {r['checkpoint_s_max']:.3f} s; signal -> process exit: median "
                    f"{r['stop_s_median']:.2f} s, max {r['stop_s_max']:.2f} s", ""]
        if r["test"] in ("preempt_ranks", "preempt_torchrun"):
            how = "SIGTERM to rank 1 only" if r["test"] == "preempt_ranks" else \
                "SIGTERM to the torchrun launcher"
            out += [f"{how}: stopped after step {r['step']} (epoch {r['epoch'] + 1}, step "
                    f"{r['position']} of it), signal -> exit {r['stop_s']:.2f} s", ""]
    fuzz = [r for r in rows if r["test"].startswith("fuzz:")]
    if fuzz:
        out += ["| target | examples | calls | rejected (AekitError) | peak RSS growth / case "
                "| slowest case (CPU) |", "|---|---:|---:|---:|---:|---:|"]
        for r in fuzz:
            out.append(f"| {r['target']} | {r.get('examples', '?'):,} | {r['cases']:,} | "
                       f"{r['rejected']:,} | {_size(r['peak_rss_growth'])} | "
                       f"{_seconds(r['slowest_s'])} |")
        out.append(f"| **total** | **{sum(r.get('examples', 0) for r in fuzz):,}** | "
                   f"**{sum(r['cases'] for r in fuzz):,}** | "
                   f"**{sum(r['rejected'] for r in fuzz):,}** | | |")
        out.append(f"largest input: {max(r['largest_input'] for r in fuzz):,} bytes")
        out.append("")
    for r in rows:
        if r["test"].startswith("resources:"):
            p = r["peak_rss_mb"]
            out.append(f"| `{r['test'].split(':', 1)[1]}` | {p['1000']:.1f} MB | "
                       f"{p['10000']:.1f} MB | +{r['growth_mb']} MB | {r['limit_mb']} MB |")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    rows = [json.loads(line) for line in Path(argv[0]).read_text().splitlines() if line.strip()]
    print(summarize(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
