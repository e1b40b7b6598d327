"""``stakeledger demo``: a seeded scenario that exercises everything built so far.

The demo runs on a simulated clock and seeded ids, so two runs on fresh stores write
the same log. Each chapter prints what a user would want to see at that point.
"""

from __future__ import annotations

from fractions import Fraction

import typer
from eventsourcing.application import AggregateNotFoundError
from rich.rule import Rule
from rich.text import Text

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.api.inputs import printable
from stakeledger.cli.context import get_context
from stakeledger.cli.markets import price
from stakeledger.cli.output import console, say, strong, table
from stakeledger.domain.errors import LedgerError
from stakeledger.domain.model.accounts import TREASURY
from stakeledger.domain.model.positions import position_uuid
from stakeledger.domain.model.reputation import reputation_uuid
from stakeledger.domain.rules.money import format_amount, parse_amount, parse_fraction, parse_price_wad
from stakeledger.domain.service.application import StakeLedger, TransferRequest
from stakeledger.domain.service.clock import ManualClock
from stakeledger.domain.service.ids import SeededIds
from stakeledger.domain.service.log import max_position
from stakeledger.projections import dashboard
from stakeledger.projections.audit import audit
from stakeledger.projections.statements import statement_lines

AGENTS = ("ada", "grace", "linus", "margaret", "dennis")
CHART_FILE = "demo-equity.png"
EXPORT_DIR = "demo-export"
# A publicly known development key (Hardhat's account #0): fine for a demo, never for real funds.
DEMO_SIGNING_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ARTIFACTS = (
    ("ART-CRISPR", "Prime editing corrects the sickle-cell mutation in vivo", "biology", 90),
    ("ART-LLM", "Scaling laws hold past 10^26 FLOPs", "machine-learning", 90),
    ("ART-FUSION", "Net energy gain from a tabletop fusor", "physics", 90),
    ("ART-ROOM-TEMP", "A room-temperature ambient-pressure superconductor", "physics", 90),
    ("ART-PROTEIN", "De-novo enzyme folds as designed", "biology", 0),
)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(ctx: typer.Context) -> None:
    """Run the seeded demo scenario on the chosen store (best on a fresh one)."""
    context = get_context(ctx)
    context.creating = True
    context.clock = ManualClock()
    app = open_ledger(context.url, clock=context.clock, new_id=SeededIds(2026))
    if app.is_initialised():
        raise LedgerError(f"the demo needs a fresh store, but {context.url} already holds a ledger")
    Demo(app, context.clock).run()
    if not context.url.startswith("memory:"):  # the web page serves this store
        console.print(
            f"\nOpen the market in a browser: stakeledger --db {context.url} serve, then http://127.0.0.1:8000/ "
            f"(sign in with a key: stakeledger --db {context.url} apikey create ada)",
            soft_wrap=True,
        )


class Demo:
    def __init__(self, app: StakeLedger, clock: ManualClock) -> None:
        self.app = app
        self.clock = clock

    def tokens(self, text: str) -> int:
        return parse_amount(text, self.app.decimals)

    def show(self, units: int) -> str:
        return format_amount(units, self.app.decimals, places=2)

    def chapter(self, title: str) -> None:
        console.print(Rule(Text(title, style="bold")))

    def run(self) -> None:
        self.accounts()
        self.markets()
        self.lifecycle()
        self.portfolios()
        self.research()
        self.views()
        self.closing_audit()
        self.export()

    # Chapters ------------------------------------------------------------------------

    def accounts(self) -> None:
        self.chapter("1. Accounts and double-entry transfers")
        self.app.initialise(decimals=18)
        for name in AGENTS:
            self.app.open_account(name)
            self.app.mint(name, self.tokens("10000"), command_id=f"demo-grant-{name}")
        say(f"Opened {len(AGENTS)} agents and minted 10,000 tokens each from the treasury.")
        # A retried command with the same id returns the first result and writes nothing.
        again = self.app.mint("ada", self.tokens("10000"), command_id="demo-grant-ada")
        say(
            f"Retried ada's grant with the same command id: same transfer {again['transfer_id'][:8]}…, nothing new written."
        )
        self.clock.advance(days=1)
        self.app.transfer("ada", "grace", self.tokens("1250.5"))
        self.app.transfer("grace", "linus", self.tokens("300"))
        self.app.burn("dennis", self.tokens("500"))
        self.app.transfer_many(
            [TransferRequest("margaret", name, self.tokens("100")) for name in ("ada", "grace", "linus", "dennis")]
        )
        try:
            self.app.transfer("linus", "ada", self.tokens("1000000"))
        except LedgerError as refused:
            say(Text.assemble("Refused as expected: ", strong(refused.code), f" — {printable(str(refused))}"))
        rows = [[name, self.show(self.app.balance_of(name))] for name in (*AGENTS, TREASURY)]
        table("Balances", ["account", "balance"], rows, right=["balance"])
        self.statement("grace")

    def statement(self, name: str) -> None:
        rows = [
            [
                line.position,
                line.at.date().isoformat(),
                line.reason,
                line.counterparty,
                self.show(line.delta_units),
                self.show(line.balance_units),
            ]
            for line in statement_lines(self.app, name)
        ]
        table(
            f"Statement — {name}",
            ["pos", "date", "reason", "counterparty", "amount", "balance"],
            rows,
            right=["pos", "amount", "balance"],
        )

    def price(self, wad: int) -> str:
        return price(wad)

    def markets(self) -> None:
        self.chapter("2. Artifact markets: an LMSR pool quotes every artifact")
        for artifact_id, title, group, hold in ARTIFACTS:
            self.app.list_artifact(artifact_id, title, self.tokens("1000"), group=group, min_hold_days=hold)
        say(f"Listed {len(ARTIFACTS)} artifacts; each pool was funded from the treasury with b·ln 2 ≈ 693.15 tokens.")
        # Limit orders rest first, so the market orders below cross and fill them.
        self.app.place_limit_order(
            "dennis", "ART-CRISPR", "long", self.tokens("300"), parse_price_wad("0.45"), expires_in_days=30
        )
        self.app.place_limit_order("margaret", "ART-LLM", "short", self.tokens("250"), parse_price_wad("0.40"))
        self.app.place_limit_order(
            "linus", "ART-FUSION", "long", self.tokens("200"), parse_price_wad("0.30"), expires_in_days=2
        )
        trades = [
            ("ada", "ART-CRISPR", "long", "800"),
            ("grace", "ART-CRISPR", "short", "1200"),
            ("linus", "ART-LLM", "long", "900"),
            ("margaret", "ART-LLM", "long", "400"),
            ("dennis", "ART-FUSION", "short", "600"),
            ("ada", "ART-FUSION", "long", "150"),
            ("grace", "ART-ROOM-TEMP", "short", "700"),
            ("linus", "ART-ROOM-TEMP", "long", "350"),
            ("margaret", "ART-PROTEIN", "long", "500"),
            ("dennis", "ART-PROTEIN", "short", "200"),
        ]
        fills = 0
        for agent, artifact_id, side, amount in trades:
            fills += len(self.app.open_position(agent, artifact_id, side, self.tokens(amount))["fills"])
        say(
            f"Placed {len(trades)} market orders; they crossed and filled {fills} resting limit orders in the same transactions."
        )
        try:
            self.app.open_position("ada", "ART-LLM", "long", self.tokens("100"), max_price_wad=parse_price_wad("0.5"))
        except LedgerError as refused:
            say(Text.assemble("Refused as expected: ", strong(refused.code), f" — {printable(str(refused))}"))
        for artifact_id, *_ in ARTIFACTS[:2]:
            self.book(artifact_id)
        self.positions()

    def book(self, artifact_id: str) -> None:
        artifact = self.app.get_artifact(artifact_id)
        long_wad, short_wad = artifact.prices()
        say(
            Text.assemble(
                strong(artifact_id),
                f" — p(long) {self.price(long_wad)}, p(short) {self.price(short_wad)}, "
                f"pool {self.show(self.app.balance_of(f'pool:{artifact_id}'))}",
            )
        )
        orders = sorted(artifact.orders.values(), key=lambda o: (o["side"], -o["limit_price_wad"]))
        if orders:
            table(
                None,
                ["order", "agent", "side", "limit", "remaining"],
                [
                    [
                        o["order_id"],
                        o["agent"],
                        o["side"],
                        self.price(o["limit_price_wad"]),
                        self.show(o["remaining_units"]),
                    ]
                    for o in orders
                ],
                right=["limit", "remaining"],
            )
        depth = self.app.market_depth(artifact_id)
        table(
            None,
            ["move p(long) to", *[self.price(int(r["target_long_wad"]))[:3] for r in depth]],
            [["cost (tokens)", *[f"{int(r['cost_units']) // 10**self.app.decimals:,}" for r in depth]]],
        )

    def positions(self) -> None:
        rows = []
        for artifact_id, *_ in ARTIFACTS:
            artifact = self.app.get_artifact(artifact_id)
            for position_id in artifact.position_ids:
                p = self.app.repository.get(position_uuid(position_id))
                rows.append(
                    [
                        p.position_id,
                        p.owner,
                        p.side,
                        self.show(p.quantity_units),
                        self.show(p.cost_units),
                        self.price(p.entry_price_wad)[:6],
                        p.status,
                    ]
                )
        table(
            "Positions",
            ["position", "owner", "side", "shares", "cost", "entry p(long)", "status"],
            rows,
            right=["shares", "cost", "entry p(long)"],
        )

    def lifecycle(self) -> None:
        self.chapter("3. Lifecycle: transitions settle positions, the pool is the counterparty")
        app = self.app
        self.clock.advance(days=3)  # linus's FUSION order expires unfilled on the next touch
        results = [
            app.transition_artifact(
                "ART-CRISPR",
                "validated",
                actor="review-board",
                reason="replicated twice",
                price_wad=parse_price_wad("0.92"),
            ),
            app.transition_artifact(
                "ART-ROOM-TEMP",
                "deprecated",
                actor="review-board",
                reason="failed replication",
                price_wad=parse_price_wad("0.04"),
            ),
            app.transition_artifact(
                "ART-LLM",
                "flagged",
                actor="moderator",
                reason="possible data leak",
                price_wad=parse_price_wad("0.25"),  # the moderator's oracle: flagged needs s < 0.3
            ),
            app.transition_artifact("ART-LLM", "listed", actor="moderator", reason="leak ruled out"),
            app.transition_artifact("ART-FUSION", "challenged", actor="rival-lab", reason="calorimetry disputed"),
        ]
        try:  # without an oracle price, the 7-day average must meet validated's threshold (>= 0.7)
            app.transition_artifact("ART-FUSION", "validated", actor="rival-lab", reason="premature claim")
        except LedgerError as refused:
            say(Text.assemble("Validating ART-FUSION now: ", strong(refused.code), f" — {printable(str(refused))}"))
        try:
            app.close_position("ART-FUSION/p1")
        except LedgerError as refused:
            say(Text.assemble("While challenged: ", strong(refused.code), f" — {printable(str(refused))}"))
        results.append(
            app.transition_artifact("ART-FUSION", "listed", actor="review-board", reason="challenge resolved")
        )
        self.clock.advance(days=91)
        closed = app.close_position("ART-FUSION/p2")
        say(
            f"After the 90-day hold, ART-FUSION/p2 closed at market for {self.show(int(closed['proceeds_units']))} "
            f"(P&L {self.show(int(closed['pnl_units']))})."
        )
        results.append(
            app.transition_artifact(
                "ART-PROTEIN", "validated", price_wad=parse_price_wad("0.97"), reason="structure confirmed"
            )
        )
        table(
            "Transitions",
            ["artifact", "from → to", "settled at", "7-day avg", "live positions", "paid", "tax"],
            [
                [
                    r["artifact"],
                    f"{r['from']} → {r['to']}",
                    self.price(int(r["price_long_wad"])),
                    self.price(int(r["window_average_wad"])),
                    r["positions"],
                    self.show(int(r.get("paid_units", 0))),
                    self.show(int(r.get("tax_units", 0))),
                ]
                for r in results
            ],
            right=["settled at", "7-day avg", "live positions", "paid", "tax"],
        )
        bounty = app.post_bounty("ART-CRISPR", "grace", self.tokens("15"))
        shares = app.distribute_bounty(
            bounty["bounty"],
            [("ada", parse_fraction("4/5")), ("linus", parse_fraction("2/25")), ("dennis", parse_fraction("3/25"))],
        )
        say(
            f"Bounty {bounty['bounty']} of 15 tokens split 4/5, 2/25, 3/25: "
            + ", ".join(f"{name} {self.show(int(units))}" for name, units in shares["shares"].items())
        )
        self.settlements()
        self.reputation()

    def settlements(self) -> None:
        rows = []
        for artifact_id, *_ in ARTIFACTS:
            for position_id in self.app.get_artifact(artifact_id).position_ids:
                p = self.app.repository.get(position_uuid(position_id))
                if p.status in ("settled", "partially_settled"):
                    rows.append(
                        [
                            position_id,
                            p.owner,
                            p.side,
                            p.status,
                            self.show(p.payout_units),
                            self.show(p.realized_pnl_units),
                        ]
                    )
        table(
            "Settlements",
            ["position", "agent", "side", "status", "paid out", "realised P&L"],
            rows,
            right=["paid out", "realised P&L"],
        )

    def reputation(self) -> None:
        rows = []
        for name in AGENTS:
            try:
                r = self.app.repository.get(reputation_uuid(name))
            except AggregateNotFoundError:
                continue
            rows.append([name, self.price(r.believability_wad), r.predictions, r.correct])
        table(
            "Reputation (believability starts at 0.5)",
            ["agent", "believability", "predictions", "correct"],
            rows,
            right=["believability", "predictions", "correct"],
        )

    def portfolios(self) -> None:
        self.chapter("4. Portfolios: risk limits, Kelly sizing, trailing stops, emergency liquidation")
        app = self.app
        for group, count in (("genomics", 3), ("climate", 3), ("materials", 2)):
            for n in range(count):
                app.list_artifact(
                    f"{group[:3].upper()}-{n + 1}",
                    f"{group} claim {n + 1}",
                    self.tokens("2000"),
                    group=group,
                    min_hold_days=0,
                )
        markets = [
            f"{g[:3].upper()}-{n + 1}" for g, c in (("genomics", 3), ("climate", 3), ("materials", 2)) for n in range(c)
        ]
        say(f"Listed {len(markets)} more markets in 3 correlation groups: {', '.join(markets)}.")
        # margaret keeps the default limits (5% a position, 20% a group, 30% in all) but a wider stop-loss.
        app.configure_portfolio("margaret", emergency_liquidation_loss_pct="-20")
        app.configure_portfolio(
            "grace",
            max_position_size_pct="12",
            max_correlated_exposure_pct="25",
            max_total_exposure_pct="60",
            emergency_liquidation_loss_pct="-8",
        )
        app.configure_portfolio("dennis", max_position_size_pct="8")
        for artifact_id in markets[:4]:
            app.configure_market("dennis", artifact_id, trail_pct="15")
        table(
            "Risk limits",
            ["agent", "max position %", "max group %", "max total %", "liquidate at %"],
            [
                [
                    name,
                    c["max_position_size_pct"],
                    c["max_correlated_exposure_pct"],
                    c["max_total_exposure_pct"],
                    c["emergency_liquidation_loss_pct"],
                ]
                for name in ("margaret", "grace", "dennis")
                for c in [app.configure_portfolio(name)["config"]]
            ],
        )
        beliefs = {
            "margaret": {"GEN-1": "0.70", "GEN-2": "0.62", "CLI-1": "0.35", "MAT-1": "0.66"},
            "grace": {"GEN-1": "0.80", "GEN-2": "0.75", "GEN-3": "0.72", "CLI-2": "0.70", "MAT-2": "0.20"},
            "dennis": {"GEN-1": "0.68", "CLI-1": "0.74", "CLI-3": "0.30"},
        }
        rows = []
        for agent, views in beliefs.items():
            for artifact_id, belief in views.items():
                result = app.kelly_order(agent, artifact_id, parse_price_wad(belief), fraction=parse_fraction("0.5"))
                trade = result.get("trade") or {}
                outcome = (
                    f"rejected {trade['rejected']['reason']}"
                    if "rejected" in trade
                    else f"placed {trade['position']}"
                    if result["placed"]
                    else f"no order: {result['reason']}"
                )
                rows.append(
                    [
                        agent,
                        artifact_id,
                        belief,
                        self.price(int(result["price_long_wad"]))[:5],
                        result["side"],
                        f"{float(Fraction(result['full_kelly'])):.3f}",
                        self.show(int(result["size_units"])),
                        result["capped_by"] or "",
                        outcome,
                    ]
                )
        table(
            "Half-Kelly orders",
            ["agent", "market", "belief", "price", "side", "full f*", "size", "capped by", "outcome"],
            rows,
            right=["belief", "price", "full f*", "size"],
        )
        # A large trader moves the genomics markets hard against the longs.
        app.open_account("whale")
        app.mint("whale", self.tokens("50000"))
        self.clock.advance(days=1)
        actions = []
        for artifact_id in ("GEN-1", "GEN-2", "GEN-3", "CLI-1"):
            actions += app.open_position("whale", artifact_id, "short", self.tokens("6000")).get("risk_actions", [])
            self.clock.advance(days=1)
        for action in actions:
            what = (
                "trailing stop closed"
                if action["action"] == "stop"
                else f"emergency liquidation of {action['agent']} closed"
            )
            say(f"  {what} {action['position']}")
        for agent in ("margaret", "grace", "dennis"):
            self.dashboard(agent)
        self.chart("dennis")

    def research(self) -> None:
        """Orders that say why they were placed, attribution by signal, a backtest of the log."""
        from types import SimpleNamespace

        from stakeledger.agents.backtest import run_backtest
        from stakeledger.cli.backtest import after_init
        from stakeledger.cli.backtest import show as show_backtest
        from stakeledger.domain.rules.rationale import Rationale
        from stakeledger.projections.attribution import attribution

        self.chapter("5. The research loop: why each order was placed, attribution by signal, a backtest")
        app = self.app
        orders = (  # agent, market, side, tokens, belief, edge, reasoning, features (log-odds)
            ("ada", "MAT-1", "long", "400", "0.66", "0.09", "two labs reproduced it", {"fg_lo": "0.12", "mom_lo": "0.03"}),
            ("ada", "CLI-3", "short", "300", "0.35", "0.06", "the model's priors moved", {"news_lo": "-0.30"}),
            ("ada", "CLI-2", "long", "250", "0.60", "0.04", "momentum only", {"mom_lo": "0.08", "fg_lo": "0.02"}),
            ("linus", "MAT-2", "long", "300", "0.55", "0.03", "a hunch", {"fg_lo": "0.04"}),
        )  # fmt: skip
        for agent, market, side, tokens, belief, edge, reasoning, features in orders:
            why = Rationale.from_inputs(belief=belief, edge=edge, reasoning=reasoning, features=features)
            app.open_position(agent, market, side, self.tokens(tokens), rationale=why)
            self.clock.advance(seconds=6 * 3600)
        for market, side in (("MAT-1", "long"), ("CLI-3", "short"), ("CLI-2", "short"), ("MAT-2", "short")):
            app.open_position("whale", market, side, self.tokens("1500"))  # the crowd follows some calls
            self.clock.advance(seconds=6 * 3600)
        first = app.get_artifact("MAT-1").position_ids[-2]
        shown = app.position_rationale(first).as_decimals()
        say(
            f"ada's order {first} recorded belief {shown['belief']}, edge {shown['edge']}, "
            f"features {', '.join(f'{k}={v}' for k, v in shown['features'].items())}: "
            f'"{shown["reasoning"]}" (stored as integers at 10**18 on Position.Opened).'
        )
        data = attribution(app, "ada", by="feature")
        money = lambda units: self.show(int(units))  # noqa: E731
        rows = [
            [
                r["feature"],
                r["triggered_positions"],
                money(r["pnl_units"]),
                money(r["material_pnl_units"]),
                money(r["not_material_pnl_units"]),
            ]
            for r in data["rows"]
        ]
        rows.append(
            [
                data["no_features"]["feature"],
                data["no_features"]["positions"],
                money(data["no_features"]["pnl_units"]),
                "",
                "",
            ]
        )
        rows.append(["total", data["total"]["positions"], money(data["total"]["total_pnl_units"]), "", ""])
        table(
            "ada's P&L by signal feature (each position's P&L shared by |log-odds|; material at 0.05)",
            ["feature", "positions", "P&L", "material", "not material"],
            rows,
            right=["positions", "P&L", "material", "not material"],
        )

        def follow_the_crowd(orchestrator, candle) -> None:
            """Buy 100 tokens of the side a candle moved at least two points towards."""
            moved = candle.close_wad - candle.open_wad
            if abs(moved) >= 2 * 10**16 and candle.trades >= 1:
                side = "long" if moved > 0 else "short"
                orchestrator.app.open_position(orchestrator.agent, candle.artifact, side, self.tokens("100"))

        result = run_backtest(
            app,
            SimpleNamespace(strategy=follow_the_crowd),
            start=after_init(app),
            end=max_position(app),
            agent="backtest-agent",
            interval="1d",
            capital_units=self.tokens("10000"),
        )
        say(
            "A strategy that buys whatever moved two points in a day, replayed over this whole log "
            "against an in-memory copy (the store is only read):"
        )
        show_backtest(result, app.decimals)

    def dashboard(self, agent: str) -> None:
        summary = dashboard.summary(self.app, agent)
        metrics = dashboard.metrics(self.app, agent)
        advice = dashboard.rebalance(self.app, agent)
        money = lambda key: self.show(int(summary[key]))  # noqa: E731
        fmt = lambda value, spec: "—" if value is None else format(value, spec)  # noqa: E731
        table(
            f"Dashboard — {agent}",
            [
                "equity",
                "available",
                "deployed",
                "active",
                "closed",
                "total P&L",
                "win %",
                "top-3 %",
                "Sharpe",
                "max DD %",
            ],
            [
                [
                    money("equity_units"),
                    money("available_units"),
                    money("deployed_units"),
                    summary["active_positions"],
                    summary["closed_positions"],
                    money("total_pnl_units"),
                    summary["win_rate_pct"] or "—",
                    summary["concentration_top3_pct"] or "—",
                    fmt(metrics["sharpe"], ".2f"),
                    fmt(metrics["max_drawdown_pct"], ".2f"),
                ]
            ],
            right=[
                "equity",
                "available",
                "deployed",
                "active",
                "closed",
                "total P&L",
                "win %",
                "top-3 %",
                "Sharpe",
                "max DD %",
            ],
        )
        if advice:
            say(
                "  rebalance: "
                + "; ".join(
                    f"{a['action']} {a['artifact_id']} ({a['reason']}, weight {a['current_pct']}% vs "
                    f"target {a['target_pct']}%)"
                    for a in advice
                )
            )

    def chart(self, agent: str) -> None:
        from pathlib import Path

        from stakeledger.projections.chart import draw_portfolio_chart

        path = draw_portfolio_chart(self.app, agent, Path(CHART_FILE))
        say(f"Wrote {agent}'s equity curve, drawdown and exposure by group to {path}.")

    def views(self) -> None:
        from stakeledger.cli.views import progress_bar
        from stakeledger.projections import queries
        from stakeledger.projections.replay_check import replay_check, view_contents
        from stakeledger.projections.runner import Runner
        from stakeledger.projections.store import open_store
        from stakeledger.projections.views import ALL_VIEWS

        self.chapter("6. Read views: kept current from the log, dropped and rebuilt at will")
        store = open_store(self.app)
        try:
            live = Runner(self.app, store).catch_up()
            say(
                f"Caught the {len(ALL_VIEWS)} views up with the log: {live.events} events folded in {live.seconds:.2f} s."
            )
            before = view_contents(store)
            with progress_bar("rebuilding, log position", console=console, transient=False) as bar:
                task = bar.add_task("rebuild", total=None)
                rebuilt = Runner(self.app, store).rebuild(
                    progress=lambda done, total: bar.update(task, completed=done, total=total)
                )
            after = view_contents(store)
            differences = replay_check(self.app, store)
            rows = sum(len(table) for table in after.values())
            say(
                Text.assemble(
                    f"Dropped every view and replayed {rebuilt.events} events in {rebuilt.seconds:.2f} s; all "
                    f"{len(after)} tables ({rows} rows) before and after the rebuild ",
                    ("identical", "green") if before == after else ("DIFFER", "red"),
                    f"; a fresh replay finds {len(differences)} differing rows.",
                )
            )
            table(
                "Views",
                ["view", "position", "lag", "rows"],
                [[r["view"], r["position"], r["lag"], r["rows"]] for r in queries.status(store, self.app)],
                right=["position", "lag", "rows"],
            )
            table(
                "Capital committed, from the markets view",
                ["artifact", "state", "p(long) / settled at", "capital", "live positions"],
                [
                    [
                        m["artifact"],
                        m["state"],
                        self.market_price(m),
                        self.show(int(m["capital_committed_units"])),
                        m["live_positions"],
                    ]
                    for m in queries.artifacts(store, by_capital=True)
                ],
                right=["p(long) / settled at", "capital", "live positions"],
            )
            table(
                "Inbox — ada, newest first",
                ["message"],
                [[m["message"]] for m in queries.inbox(store, "ada", decimals=self.app.decimals, limit=5)],
            )
        finally:
            store.close()
        if before != after or differences:
            raise typer.Exit(1)

    def market_price(self, market: dict) -> str:
        settled = market["settlement_price_wad"]
        return f"{self.price(int(settled))} (settled)" if settled is not None else (market["price_long"] or "")

    def export(self) -> None:
        from stakeledger.adapters.evm.export import balance_proof, export_ledger
        from stakeledger.adapters.evm.verification import verify_export

        self.chapter("7. EVM export: ABI records, Merkle roots, a signed EIP-712 header")
        summary = export_ledger(self.app, EXPORT_DIR, signing_key=DEMO_SIGNING_KEY, overwrite=True)
        table(
            f"Snapshot written to {EXPORT_DIR}/",
            ["field", "value"],
            [
                ["records (lastSeq)", summary.last_seq],
                ["eventsRoot", summary.events_root],
                ["balancesRoot", summary.balances_root],
                ["totalSupply", self.show(int(summary.total_supply_units))],
                ["EIP-712 digest", summary.typed_data_hash],
                ["signer", summary.signer],
            ],
        )
        proof = balance_proof(self.app, "ada")
        say(
            f"ada's balance row: address {proof['address']}, balance {self.show(int(proof['balance']))} tokens "
            f"(the leaf holds {proof['balance']} base units); "
            f"proof of {len(proof['proof'])} hashes, first {proof['proof'][0] if proof['proof'] else '—'}"
        )
        verified = verify_export(EXPORT_DIR)  # raises, naming the first bad record, if anything is off
        say(
            Text.assemble(
                f"verify {EXPORT_DIR}: ",
                (
                    f"{verified.last_seq} records, {verified.balance_rows} balance rows, both roots "
                    f"and the signature of {verified.signer} check out",
                    "green",
                ),
                f" ({verified.seconds:.2f} s).",
            )
        )

    def closing_audit(self) -> None:
        self.chapter("Audit")
        report = audit(self.app)
        table(
            "Audit — " + ("clean" if report.clean else "VIOLATIONS"),
            ["events", "accounts", "transfers", "total supply", "seconds"],
            [
                [
                    report.events,
                    report.accounts,
                    report.transfers,
                    self.show(report.total_supply_units),
                    f"{report.seconds:.3f}",
                ]
            ],
            right=["events", "accounts", "transfers", "total supply", "seconds"],
        )
        for violation in report.violations:
            console.print(Text(printable(str(violation)), style="red"))
        if not report.clean:
            raise typer.Exit(1)
