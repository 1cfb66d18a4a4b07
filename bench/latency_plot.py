"""bench.latency's plot (bench/results/latency.png): each measured click's latency over the run
and the CDFs."""

from __future__ import annotations

from pathlib import Path

from bench.latency_figures import PREFIX, Run


def plot(run: Run, path: Path) -> None:
    """Latency over time (each click by its produce time) and the CDFs."""
    import matplotlib  # noqa: PLC0415 - only the plot needs it, and it is slow to import

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    samples = run.matched.samples
    if not samples:
        return
    t0 = samples[0].produced_ms
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    xs = [(s.produced_ms - t0) / 1000 for s in samples]
    left.scatter(xs, [s.latency_ms / 1000 for s in samples], s=2, label="produce → visible")
    left.scatter(xs, [s.net_ms / 1000 for s in samples], s=2, label="net of the event-time wait")
    left.axhline(2.0, color="tab:red", linestyle="--", linewidth=1, label="goal: net ≤ 2 s")
    left.set_xlabel("click produced at (s into the measured load)")
    left.set_ylabel("seconds")
    left.legend(loc="upper left", markerscale=4, fontsize=8)
    left.grid(alpha=0.3)
    curves = [("produce → visible", [s.latency_ms for s in samples]),
              ("net of the wait", [s.net_ms for s in samples])]  # fmt: skip
    eos = [(s, e) for s, e in zip(samples, run.eos, strict=True) if e is not None]
    if eos:
        curves.append(("exactly-once estimate", [e - s.produced_ms for s, e in eos]))
    for label, values in curves:
        ordered = sorted(v / 1000 for v in values)
        right.plot(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))], label=label)
    right.axvline(2.0, color="tab:red", linestyle="--", linewidth=1)
    right.set_xlabel("seconds")
    right.set_ylabel("share of clicks")
    right.legend(loc="lower right", fontsize=8)
    right.grid(alpha=0.3)
    f = run.figures
    fig.suptitle(
        f"Attribution latency at {f[f'{PREFIX}rate_events_per_s']:,.0f} messages/s, "
        f"{f[f'{PREFIX}window_s']:g} s windows, {f[f'{PREFIX}out_of_orderness_s']:g} s "
        f"out-of-orderness, sink {f[f'{PREFIX}sink']} (2 vCPU)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
