"""The README's benchmark section and the chart, both written from one run's results."""

from __future__ import annotations

import re
from pathlib import Path

BEGIN = "<!-- bench:begin (written by `make bench`; edit sgi/bench/report.py instead) -->"
END = "<!-- bench:end -->"
STAGES = (("ingest", "ingest_ev_s"), ("forward", "forward_ev_s"), ("identity", "resolve_ev_s"),
          ("child state", "child_ev_s"), ("places", "place_ev_s"), ("sink (rows)", "sink_rows_s"))
CEILINGS = (("aiokafka + json.loads", "aiokafka_raw_ev_s", "#4c72b0"), ("quix-streams per-key count",
            "quixstreams_ev_s", "#55a868"), ("Faust bare take()", "faust_bare_ev_s", "#c44e52"))


def _fmt(value: object, unit: str = "") -> str:
    if value is None:
        return "not measured (see notes)"
    if isinstance(value, float) and value < 10:
        return f"{value:.2f}{unit}"
    if isinstance(value, int | float):
        return f"{value:,.0f}{unit}"
    return str(value)


def _ratio(results: dict, key: str, base: str = "faust_bare_ev_s") -> str:
    value, ceiling = results.get(key), results.get(base)
    if not isinstance(value, int | float) or not isinstance(ceiling, int | float) or not ceiling:
        return "n/a"
    return f"{value / ceiling:.3f}"


def section(results: dict, chart: str | None) -> str:
    """Markdown for the figures of one run: every figure, and each stage as a share of Faust's ceiling."""
    machine = results.get("machine") or {}
    lines = [
        BEGIN,
        "",
        f"One run of `make bench` on {results.get('date', '?')}: {machine.get('cores', '?')} cores, "
        f"{machine.get('memory_gib', '?')} GiB memory, Python {machine.get('python', '?')}, "
        f"Kafka {machine.get('kafka', '?')} (local, single node), {results.get('events')} simulated contract "
        f"messages per live part, {results.get('peer_events')} on the peers' topic, 4 partitions, "
        f"{results.get('seconds')} s in all. The machine is shared by other work and has 2 cores: absolute "
        "figures move from run to run; the ratios, measured in the same run, are what to compare.",
        "",
    ]
    if chart:
        lines += [f"![stage throughputs against the ceilings]({chart})", ""]
    lines += ["| what | figure | / Faust bare |", "|---|---|---|"]
    for label, key, _ in reversed(CEILINGS):
        lines.append(f"| {label} (`{key}`) | {_fmt(results.get(key), ' ev/s')} | {_ratio(results, key)} |")
    for label, key in STAGES:
        unit = " rows/s" if key == "sink_rows_s" else " ev/s"
        lines.append(f"| stage alone: {label} (`{key}`) | {_fmt(results.get(key), unit)} | {_ratio(results, key)} |")
    lines.append(f"| slowest stage / Faust bare (`stage_ratio_min`) | {_fmt(results.get('stage_ratio_min'))} | |")
    lines += [
        f"| end to end, 1 worker + sink (`e2e_ev_s`, {results.get('e2e_events')} messages) | "
        f"{_fmt(results.get('e2e_ev_s'), ' ev/s')} | {_ratio(results, 'e2e_ev_s')} |",
        f"| end to end, 2 workers + sink (`e2e_2w_ev_s`) | {_fmt(results.get('e2e_2w_ev_s'), ' ev/s')} | "
        f"{_ratio(results, 'e2e_2w_ev_s')} |",
        f"| alert latency p50 / p99 at {results.get('latency_rate')} ev/s (`alert_p50_ms`, `alert_p99_ms`) | "
        f"{_fmt(results.get('alert_p50_ms'), ' ms')} / {_fmt(results.get('alert_p99_ms'), ' ms')} | |",
        f"| store latency p99 (`store_p99_ms`) | {_fmt(results.get('store_p99_ms'), ' ms')} | |",
        f"| core, no Kafka: ingest (`core_ingest_ev_s`) | {_fmt(results.get('core_ingest_ev_s'), ' ev/s')} | "
        f"{_ratio(results, 'core_ingest_ev_s')} |",
        f"| core, no Kafka: correlation (`core_correlate_ev_s`) | "
        f"{_fmt(results.get('core_correlate_ev_s'), ' ev/s')} | {_ratio(results, 'core_correlate_ev_s')} |",
        f"| core peak traced memory (`core_peak_mib`, separate untimed pass) | "
        f"{_fmt(results.get('core_peak_mib'), ' MiB')} | |",
        f"| serialised child state p50 / p99 (`state_bytes_p50`, `state_bytes_p99`) | "
        f"{_fmt(results.get('state_bytes_p50'), ' B')} / {_fmt(results.get('state_bytes_p99'), ' B')} | |",
        f"| core time per event, child with 2,000 facts / with 10 (`cost_growth`) | "
        f"{_fmt(results.get('cost_growth'))} | |",
        f"| worker peak RSS (`worker_rss_mib`) | {_fmt(results.get('worker_rss_mib'), ' MiB')} | |",
        "",
    ]
    notes = results.get("notes") or []
    if notes:
        lines += ["Notes from this run:", ""] + [f"- {note}" for note in notes] + [""]
    lines.append(END)
    return "\n".join(lines)


def rewrite_readme(readme: Path, results: dict, chart: str | None) -> None:
    """Replace the text between the markers (they must be there already)."""
    text = readme.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"{readme} has no benchmark markers ({BEGIN} ... {END})")
    readme.write_text(pattern.sub(lambda _: section(results, chart), text, count=1), encoding="utf-8")


def draw_chart(results: dict, path: Path) -> None:
    """Horizontal bars: each stage alone, with the ceilings as vertical lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keyed = [*STAGES, ("end to end, 1 worker", "e2e_ev_s"), ("end to end, 2 workers", "e2e_2w_ev_s")]
    bars = [(label, float(value)) for label, key in keyed if isinstance(value := results.get(key), int | float)]
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    ax.barh([label for label, _ in bars][::-1], [value for _, value in bars][::-1], color="#8c8c8c")
    for label, key, colour in CEILINGS:
        value = results.get(key)
        if isinstance(value, int | float):
            ax.axvline(value, color=colour, linestyle="--", linewidth=1.5, label=f"{label}: {value:,.0f} ev/s")
    ax.set_xscale("log")
    ax.set_xlabel("messages (rows for the sink) per second, log scale")
    ax.set_title(f"sgi stages alone vs the ceilings, one run on {results.get('date', '?')}")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Software": None, "Creation Time": None})
    plt.close(fig)
