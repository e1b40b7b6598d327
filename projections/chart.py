"""The portfolio chart: equity curve, drawdown and exposure by correlation group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stakeledger.domain.errors import InvalidInputError
from stakeledger.domain.service.application import StakeLedger
from stakeledger.projections import dashboard


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display on servers and CI), loaded on first
    use: a command that draws nothing never pays for importing it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def drawdowns(equity: list[float]) -> list[float]:
    """Each point's fall from the highest point before it, in percent (0 while nothing is up)."""
    peak, drawdown = float("-inf"), []
    for value in equity:
        peak = max(peak, value)
        drawdown.append((value / peak - 1) * 100 if peak > 0 else 0.0)
    return drawdown


def save_png(figure: Any, out: Path, dpi: int) -> Path:
    """Write the figure, refusing clearly when the file cannot be written; always close it."""
    try:
        figure.savefig(out, dpi=dpi)
    except OSError as error:
        raise InvalidInputError(f"cannot write the chart to {out}: {error.strerror or error}") from None
    finally:
        pyplot().close(figure)
    return out


def draw_portfolio_chart(app: StakeLedger, agent: str, out: Path) -> Path:
    plt = pyplot()
    if out.suffix.lower() != ".png":
        raise InvalidInputError("the chart is written as PNG: give --out a .png file name")
    if not out.parent.exists():
        raise InvalidInputError(f"directory does not exist: {out.parent}")
    scale = 10**app.decimals
    curve = dashboard.equity_curve(app, agent)
    days = [day for day, _ in curve]
    equity = [units / scale for _, units in curve]
    drawdown = drawdowns(equity)
    groups = dashboard.summary(app, agent)["exposure_by_group_units"]

    figure, (top, middle, bottom) = plt.subplots(3, 1, figsize=(9, 9), gridspec_kw={"height_ratios": [3, 2, 2]})
    top.plot(days, equity, marker="o", color="#1f6feb")
    top.set_title(f"{agent}: equity (tokens)")
    top.grid(alpha=0.3)
    middle.fill_between(days, drawdown, 0, color="#d1242f", alpha=0.4)
    middle.set_title("drawdown (%)")
    middle.grid(alpha=0.3)
    if groups:
        bottom.bar(list(groups), [int(units) / scale for units in groups.values()], color="#2da44e")
    else:
        bottom.text(0.5, 0.5, "no open positions", ha="center", va="center", transform=bottom.transAxes)
        bottom.set_xticks([])
        bottom.set_yticks([])
    bottom.set_title("cost committed by correlation group (tokens)")
    for axis in (top, middle):
        axis.tick_params(axis="x", labelrotation=30)
    figure.tight_layout()
    return save_png(figure, out, dpi=110)
