"""`tradesim`: the command line on the client library. `tradesim --help` lists the commands.

Exit codes: 0 done; 1 the server refused (its error code is printed); 2 bad usage;
3 not logged in, or the login or token was refused; 4 the server could not be reached (or did not
answer in time); 130 interrupted. With --json, results go to stdout as JSON (`watch`: one message a
line) and a failure as the server's error object on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from tradesim import __version__
from tradesim.backtest import backtest, load_strategy
from tradesim.client import Client
from tradesim.errors import ApiError, NotConnected, ProtocolError, RequestTimeout, SessionEnded

OK, REFUSED, USAGE, AUTH, UNREACHABLE, INTERRUPTED = 0, 1, 2, 3, 4, 130
DEFAULT_SERVER = "http://127.0.0.1:8000"
# Two devices per login: `watch` holds its own socket, so commands run meanwhile do not replace it
# (a device has one connection at a time, docs/protocol.md section 2).
DEVICES = ("cli", "watch")


class Failure(Exception):
    def __init__(self, code: int, text: str, error: dict[str, Any] | None = None) -> None:
        super().__init__(text)
        self.exit_code = code
        self.error = error


def home() -> Path:
    return Path(os.environ.get("TRADESIM_HOME") or Path.home() / ".config" / "tradesim")


def credentials_file() -> Path:
    return home() / "credentials.json"


def device_file(server: str, device: str) -> Path:
    parts = urlsplit(server)
    return home() / f"device-{parts.hostname or 'localhost'}-{parts.port or 80}-{device}"


def load_credentials(server: str) -> dict[str, Any]:
    try:
        saved = json.loads(credentials_file().read_text())
    except (OSError, ValueError):
        saved = {}
    entry = saved.get(server)
    if not entry:
        raise Failure(AUTH, f"not logged in to {server}: run `tradesim login USERNAME`")
    return dict(entry)


def save_credentials(server: str, entry: dict[str, Any] | None) -> None:
    path = credentials_file()
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        saved = {}
    if entry is None:
        saved.pop(server, None)
    else:
        saved[server] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(saved, indent=2) + "\n")
    path.chmod(0o600)  # it holds access tokens


def client_for(args: argparse.Namespace, device: str = "cli") -> Client:
    return Client(args.server, device_file=device_file(args.server, device), max_attempts=args.attempts)


async def connected(args: argparse.Namespace, device: str = "cli") -> Client:
    entry = load_credentials(args.server)[device]
    client = client_for(args, device)
    await client.connect(token=entry["token"], device_id=entry["deviceId"])
    return client


async def one_request(args: argparse.Namespace, kind: str, **fields: Any) -> dict[str, Any]:
    client = await connected(args)
    try:
        reply: dict[str, Any] = await client.request(kind, **fields)
        return reply
    finally:
        await client.close()


# --- Commands ---------------------------------------------------------------------------


async def cmd_login(args: argparse.Namespace) -> Any:
    password = args.password or os.environ.get("TRADESIM_PASSWORD") or getpass.getpass(f"password for {args.user}: ")
    entry: dict[str, Any] = {"username": args.user}
    for device in DEVICES:
        client = client_for(args, device)
        answer = await client.login(args.user, password)
        entry[device] = {"token": answer["token"], "deviceId": answer["deviceId"], "expiresAt": answer["expiresAt"]}
    save_credentials(args.server, entry)
    return {"username": args.user, "server": args.server, "deviceId": entry["cli"]["deviceId"]}


async def cmd_logout(args: argparse.Namespace) -> Any:
    entry = load_credentials(args.server)
    for device in DEVICES:
        with contextlib.suppress(ApiError):
            client = client_for(args, device)
            client.token = entry[device]["token"]
            await client.api("POST", "/api/auth/token/revoke/")
    save_credentials(args.server, None)
    return {"loggedOut": True}


async def cmd_start(args: argparse.Namespace) -> Any:
    chosen = {"accountId": args.account, "profile": args.profile}
    return await one_request(args, "start_simulator", **{k: v for k, v in chosen.items() if v is not None})


async def cmd_stop(args: argparse.Namespace) -> Any:
    return await one_request(args, "stop_simulator")


def order_type_of(args: argparse.Namespace) -> str:
    """The order type the options describe; the server refuses a combination that makes none."""
    if args.trail_amount is not None or args.trail_percent is not None:
        return "trailing_stop"
    if args.stop is not None:
        return "stop_limit" if args.limit is not None else "stop"
    return "limit" if args.limit is not None else "market"


async def cmd_order(args: argparse.Namespace) -> Any:
    fields: dict[str, Any] = {"symbol": args.symbol.upper(), "side": args.command, "quantity": args.quantity}
    fields["orderType"] = order_type_of(args)
    fields["limitPrice"] = args.limit
    fields["stopPrice"] = args.stop
    fields["trailAmount"] = args.trail_amount
    fields["trailPercent"] = args.trail_percent
    fields["timeInForce"] = args.tif
    fields["clientOrderId"] = args.client_order_id
    if args.take_profit is not None or args.stop_loss is not None:
        fields["orderClass"] = args.order_class or "bracket"
        if args.take_profit is not None:
            fields["takeProfit"] = {"limitPrice": args.take_profit}
        if args.stop_loss is not None:
            fields["stopLoss"] = {"stopPrice": args.stop_loss}
    return await one_request(args, "place_order", **fields)


async def cmd_cancel(args: argparse.Namespace) -> Any:
    return await one_request(args, "cancel_order", orderId=args.order_id)


async def cmd_replace(args: argparse.Namespace) -> Any:
    changes = {
        "quantity": args.quantity,
        "limitPrice": args.limit,
        "stopPrice": args.stop,
        "trailAmount": args.trail_amount,
        "trailPercent": args.trail_percent,
    }
    if all(value is None for value in changes.values()):
        raise Failure(USAGE, "replace needs one of --quantity, --limit, --stop, --trail-amount, --trail-percent")
    return await one_request(args, "replace_order", orderId=args.order_id, **changes)


async def snapshot(args: argparse.Namespace) -> dict[str, Any]:
    return await one_request(args, "request_exchange_data")


async def cmd_positions(args: argparse.Namespace) -> Any:
    return list((await snapshot(args))["userPositions"].values())


async def cmd_orders(args: argparse.Namespace) -> Any:
    return list((await snapshot(args))["userOrders"].values())


async def cmd_account(args: argparse.Namespace) -> Any:
    return (await snapshot(args))["account"]


PROFILES = ("ideal", "realistic", "harsh")
LIMIT_OPTIONS = {
    "max_order_value": "maxOrderValue",
    "max_position_value": "maxPositionValue",
    "max_open_orders": "maxOpenOrders",
    "max_leverage": "maxLeverage",
    "daily_loss_limit": "dailyLossLimit",
}


async def cmd_limits(args: argparse.Namespace) -> Any:
    client = with_token(args)
    given = {wire: getattr(args, option) for option, wire in LIMIT_OPTIONS.items() if getattr(args, option) is not None}
    if args.clear or given:
        shown = await client.set_risk_limits(account_id=args.account, **given)
    else:
        shown = await client.risk_limits(account_id=args.account)
    if args.json:
        return shown
    return {wire: shown["limits"][wire] for wire in LIMIT_OPTIONS.values()} | {
        f"cap.{wire}": shown["caps"][wire] for wire in LIMIT_OPTIONS.values() if shown["caps"][wire] is not None
    }


def account_row(account: dict[str, Any]) -> dict[str, Any]:
    flags = [name for name, on in (("default", account["isDefault"]), ("current", account["isCurrent"])) if on]
    if account["closedAt"] is not None:
        flags.append(f"closed {day_of(account['closedAt'])}")
    return {
        "id": account["accountId"],
        "name": account["name"],
        "type": account["accountType"],
        "cash": account["cash"],
        "startingCash": account["startingCash"],
        "profile": account["profile"] or "-",
        "flags": ",".join(flags) or "-",
    }


def account_settings(args: argparse.Namespace) -> dict[str, Any]:
    given = {"profile": args.profile, "default": True if args.default else None}
    return {name: value for name, value in given.items() if value is not None}


async def cmd_accounts(args: argparse.Namespace) -> Any:
    listed = await with_token(args).accounts(closed=args.closed)
    return listed if args.json else [account_row(a) for a in listed]


async def cmd_open_account(args: argparse.Namespace) -> Any:
    settings = account_settings(args) | ({"startingCash": args.cash} if args.cash is not None else {})
    if args.margin:
        settings["accountType"] = "margin"
    opened = await with_token(args).open_account(args.name, **settings)
    return opened if args.json else account_row(opened)


async def cmd_update_account(args: argparse.Namespace) -> Any:
    settings = account_settings(args) | ({"name": args.name} if args.name is not None else {})
    changed = await with_token(args).update_account(args.account_id, **settings)
    return changed if args.json else account_row(changed)


async def cmd_reset_account(args: argparse.Namespace) -> Any:
    return await with_token(args).reset_account(account_id=args.account)


async def cmd_close_account(args: argparse.Namespace) -> Any:
    closed = await with_token(args).close_account(args.account_id)
    return closed if args.json else account_row(closed)


def with_token(args: argparse.Namespace) -> Client:
    """A client holding the kept token of the `cli` device, for REST calls (no socket)."""
    client = client_for(args)
    client.token = load_credentials(args.server)["cli"]["token"]
    return client


def day_of(epoch_ms: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch_ms / 1000))


def dataset_row(dataset: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": dataset["datasetId"],
        "name": dataset["name"],
        "owner": "yours" if dataset["mine"] else "shared",
        "bars": dataset["barCount"],
        "range": f"{day_of(dataset['firstAt'])}..{day_of(dataset['lastAt'])}",
        "symbols": ",".join(f"{s['symbol']}({s['bars']})" for s in dataset["symbols"]),
    }


async def cmd_datasets(args: argparse.Namespace) -> Any:
    listed = await with_token(args).datasets()
    return listed if args.json else [dataset_row(d) for d in listed]


async def cmd_upload(args: argparse.Namespace) -> Any:
    stored = await with_token(args).upload_dataset(args.name, Path(args.file))
    return stored if args.json else dataset_row(stored)


async def cmd_delete_dataset(args: argparse.Namespace) -> Any:
    await with_token(args).delete_dataset(args.dataset_id)
    return {"deleted": args.dataset_id}


def report_summary(report: dict[str, Any]) -> dict[str, Any]:
    """The figures of a report, rounded for a terminal."""
    figures = report["figures"]
    summary: dict[str, Any] = {"simulator": report["simulatorId"], "bars": report["bars"]}
    for name, value in figures.items():
        summary[name] = round(value, 6) if isinstance(value, float) else value
    return summary


async def cmd_backtest(args: argparse.Namespace) -> Any:
    on_bar = load_strategy(args.strategy)
    client = client_for(args)
    client.flow_control = False
    entry = load_credentials(args.server)["cli"]
    await client.connect(token=entry["token"], device_id=entry["deviceId"])
    try:
        result = await backtest(
            client,
            on_bar,
            dataset_id=args.dataset,
            symbols=args.symbols.split(",") if args.symbols else None,
            start=args.start,
            end=args.end,
            profile=args.profile,
            seed=args.seed,
            speed=args.speed if args.speed == "max" else float(args.speed),
            benchmark=args.benchmark,
        )
    finally:
        await client.close()
    if args.html:
        Path(args.html).write_text(
            await with_token(args).report(result.simulator_id, benchmark=args.benchmark, html=True)
        )
    if args.json:
        return {
            "simulatorId": result.simulator_id,
            "bars": result.bars,
            "placed": len(result.placed),
            "refused": result.refused,
            "report": result.report,
        }
    return report_summary(result.report) | {"placed": len(result.placed), "refused": len(result.refused)}


async def cmd_report(args: argparse.Namespace) -> Any:
    client = with_token(args)
    if args.html:
        Path(args.html).write_text(await client.report(args.simulator_id, benchmark=args.benchmark, html=True))
    report = await client.report(args.simulator_id, benchmark=args.benchmark)
    return report if args.json else report_summary(report)


async def cmd_watch(args: argparse.Namespace) -> Any:
    client = await connected(args, "watch")
    out: TextIO = sys.stdout
    in_place = out.isatty() and not args.json
    dirty = asyncio.Event()
    if args.json:

        def emit(message: Any) -> None:
            out.write(json.dumps(message) + "\n")
            out.flush()

        client.on("message", emit)
    else:
        for event in ("message", "state", "quality"):
            client.on(event, lambda _: dirty.set())
    try:
        with contextlib.suppress(NotConnected, RequestTimeout):
            if args.symbols:
                await client.request("subscribe_market", symbols=[s.upper() for s in args.symbols])
            await client.request("request_exchange_data")
        deadline = None if args.seconds is None else time.monotonic() + args.seconds
        while client.ended is None and (deadline is None or time.monotonic() < deadline):
            timeout = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(dirty.wait(), timeout)
            if dirty.is_set() and not args.json:
                dirty.clear()
                screen = render(client, args.symbols)
                out.write("\x1b[H\x1b[J" + screen if in_place else screen + "\n")
                out.flush()
                await asyncio.sleep(0.2)  # at most five frames a second
        if client.ended is not None and client.ended.reason != "closed":
            raise client.ended
    finally:
        await client.close()
    return None


def render(client: Client, symbols: list[str]) -> str:
    """The live screen: connection, prices, positions, open orders, the latest order updates, account."""
    quality = client.quality.quality if client.quality else "-"
    rtt = f"{client.last_rtt_ms:.0f} ms" if client.last_rtt_ms is not None else "-"
    lines = [
        f"{client.base_url}  {client.state}  {quality} {rtt}  simulator {client.simulator_status}  "
        f"{time.strftime('%H:%M:%S')}",
        "",
        f"{'SYMBOL':<10} {'PRICE':>14} {'CHANGE':>12} {'VOLUME':>12}",
    ]
    wanted = {s.upper() for s in symbols}
    for symbol, quote in sorted(client.prices.items()):
        if wanted and symbol not in wanted:
            continue
        places = 2 if abs(quote["price"]) >= 10 else 5  # currencies move in the fourth decimal
        price, change = f"{quote['price']:,.{places}f}", f"{quote['change']:+,.{places}f}"
        lines.append(f"{symbol:<10} {price:>14} {change:>12} {quote['volume']:>12,.2f}")
    lines += ["", f"{'POSITION':<10} {'QTY':>12} {'AVG':>12} {'VALUE':>14} {'UNREAL.':>12} {'REAL.':>12}"]
    for symbol, position in sorted(client.positions.items()):
        lines.append(
            f"{symbol:<10} {position['quantity']:>12,.4g} {position['averagePrice']:>12,.2f} "
            f"{position['value']:>14,.2f} {position['unrealizedPnl']:>+12,.2f} {position['realizedPnl']:>+12,.2f}"
        )
    lines += ["", f"{'ORDER':<12} {'SYMBOL':<9} {'SIDE':<5} {'TYPE':<7} {'QTY':>10} {'FILLED':>10} {'STATUS':<16}"]
    open_orders = [o for o in client.orders.values() if o["status"] in ("new", "partially_filled")]
    for order in sorted(open_orders, key=lambda o: o["createdAt"])[-10:]:
        lines.append(
            f"{order['orderId']:<12.12} {order['symbol']:<9} {order['side']:<5} {order['orderType']:<7} "
            f"{order['quantity']:>10,.4g} {order['filledQty']:>10,.4g} {order['status']:<16}"
        )
    done = [o for o in client.orders.values() if o["status"] not in ("new", "partially_filled")]
    if done:
        lines += ["", "RECENT"]
        for order in sorted(done, key=lambda o: o["updatedAt"])[-5:]:
            price = f" at {order['averagePrice']:,.2f}" if order["averagePrice"] is not None else ""
            why = f" ({order['reason']})" if order["reason"] else ""
            lines.append(
                f"{time.strftime('%H:%M:%S', time.localtime(order['updatedAt'] / 1000))} {order['side']} "
                f"{order['filledQty']:,.4g}/{order['quantity']:,.4g} {order['symbol']}{price} {order['status']}{why}"
            )
    if client.account:
        account = client.account
        lines += [
            "",
            f"cash {account['cash']:,.2f}   positions {account['positionsValue']:,.2f}   "
            f"equity {account['equity']:,.2f}   reserved {account['reservedCash']:,.2f}",
        ]
    return "\n".join(lines) + "\n"


# --- Output and the entry point -------------------------------------------------------


def show(result: Any, as_json: bool) -> None:
    if result is None:
        return
    if as_json:
        print(json.dumps(result))
    elif isinstance(result, list):
        for row in result:
            print("  ".join(f"{k}={v}" for k, v in row.items() if v is not None))
        if not result:
            print("(none)")
    elif isinstance(result, dict):
        for key, value in result.items():
            if key in ("type", "requestId", "timestamp"):
                continue
            if isinstance(value, dict):  # the order of order_placed / order_canceled
                print(f"{key}:")
                for inner, item in value.items():
                    if item is not None and item != "":
                        print(f"  {inner}: {item}")
            else:
                print(f"{key}: {json.dumps(value) if isinstance(value, list) else value}")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="tradesim", description="Trade on the simulator's session service.")
    top.add_argument("--server", default=os.environ.get("TRADESIM_SERVER", DEFAULT_SERVER), help="base URL")
    top.add_argument("--json", action="store_true", help="machine-readable output")
    top.add_argument("--version", action="version", version=f"tradesim {__version__}")
    top.add_argument("--attempts", type=int, default=3, help="connection attempts before giving up (default 3)")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    login = commands.add_parser("login", help="log in and keep the tokens ($TRADESIM_HOME/credentials.json)")
    login.add_argument("user")
    login.add_argument("--password", help="else $TRADESIM_PASSWORD, else asked")
    login.set_defaults(run=cmd_login)
    commands.add_parser("logout", help="revoke the kept tokens").set_defaults(run=cmd_logout)
    start = commands.add_parser("start", help="start the simulator")
    start.add_argument("--account", type=int, help="the account it trades (default: your default account)")
    start.add_argument("--profile", choices=PROFILES, help="its realism (default: the account's)")
    start.set_defaults(run=cmd_start)
    commands.add_parser("stop", help="stop the simulator").set_defaults(run=cmd_stop)
    for side in ("buy", "sell"):
        order = commands.add_parser(side, help=f"place a {side} order (market, or limit with --limit)")
        order.add_argument("symbol")
        order.add_argument("quantity", type=float)
        order.add_argument("--limit", type=float, help="limit price (with --stop: a stop-limit)")
        order.add_argument("--stop", type=float, help="stop price: a stop order")
        order.add_argument("--trail-amount", type=float, help="a trailing stop this far behind the best price")
        order.add_argument("--trail-percent", type=float, help="a trailing stop this many percent behind")
        order.add_argument("--tif", choices=("gtc", "day", "ioc", "fok"), help="time in force (default gtc)")
        order.add_argument("--take-profit", type=float, help="a bracket's (or OCO's) limit exit")
        order.add_argument("--stop-loss", type=float, help="a bracket's (or OCO's) stop exit")
        order.add_argument(
            "--class", dest="order_class", choices=("bracket", "oco"), help="with the exits (default bracket)"
        )
        order.add_argument("--client-order-id", help="idempotency key: the same one twice gives the first order")
        order.set_defaults(run=cmd_order)
    cancel = commands.add_parser("cancel", help="cancel an open order")
    cancel.add_argument("order_id")
    cancel.set_defaults(run=cmd_cancel)
    replace = commands.add_parser("replace", help="amend an open order's quantity or prices")
    replace.add_argument("order_id")
    replace.add_argument("--quantity", type=float)
    replace.add_argument("--limit", type=float, help="new limit price")
    replace.add_argument("--stop", type=float, help="new stop price")
    replace.add_argument("--trail-amount", type=float)
    replace.add_argument("--trail-percent", type=float)
    replace.set_defaults(run=cmd_replace)
    commands.add_parser("positions", help="show positions").set_defaults(run=cmd_positions)
    commands.add_parser("orders", help="show open and recent orders").set_defaults(run=cmd_orders)
    commands.add_parser("account", help="show cash and equity").set_defaults(run=cmd_account)
    limits = commands.add_parser(
        "limits", help="show your risk limits and the caps; with options, set them all (one not given is none)"
    )
    limits.add_argument("--max-order-value", type=float, help="an order's quantity x price at most")
    limits.add_argument("--max-position-value", type=float, help="a symbol's position and open buys at most")
    limits.add_argument("--max-open-orders", type=int, help="open orders at most")
    limits.add_argument("--max-leverage", type=float, help="positions and open buys over equity at most")
    limits.add_argument(
        "--daily-loss-limit", type=float, help="a market day's fall of equity that stops trading for the day"
    )
    limits.add_argument("--clear", action="store_true", help="set no limits")
    limits.add_argument("--account", type=int, help="one of your accounts (default: the current one)")
    limits.set_defaults(run=cmd_limits)
    listing = commands.add_parser("accounts", help="list your accounts")
    listing.add_argument("--closed", action="store_true", help="closed ones too")
    listing.set_defaults(run=cmd_accounts)
    opening = commands.add_parser("open-account", help="open another account")
    opening.add_argument("name")
    opening.add_argument("--cash", type=float, help="its starting cash (default: the server's)")
    opening.add_argument("--default", action="store_true", help="make it your default account")
    opening.add_argument("--margin", action="store_true", help="a margin account: short selling, buying power")
    opening.add_argument("--profile", choices=PROFILES, help="the realism its simulators start with")
    opening.set_defaults(run=cmd_open_account)
    update = commands.add_parser("update-account", help="rename an account, make it the default, set its profile")
    update.add_argument("account_id", type=int)
    update.add_argument("--name")
    update.add_argument("--default", action="store_true", help="make it your default account")
    update.add_argument("--profile", choices=PROFILES)
    update.set_defaults(run=cmd_update_account)
    resetting = commands.add_parser("reset-account", help="set an account back to its starting cash")
    resetting.add_argument("--account", type=int, help="one of your accounts (default: the current one)")
    resetting.set_defaults(run=cmd_reset_account)
    closing = commands.add_parser("close-account", help="close an account (its history stays)")
    closing.add_argument("account_id", type=int)
    closing.set_defaults(run=cmd_close_account)
    commands.add_parser("datasets", help="list your datasets of bars and the shared ones").set_defaults(
        run=cmd_datasets
    )
    upload = commands.add_parser(
        "upload-dataset", help="store a CSV (or Parquet file) of bars as your dataset (checked whole)"
    )
    upload.add_argument("file", help="timestamp,symbol,open,high,low,close,volume (docs/datasets.md)")
    upload.add_argument("--name", required=True, help="the dataset's name, unique among yours")
    upload.set_defaults(run=cmd_upload)
    delete = commands.add_parser("delete-dataset", help="delete one of your datasets")
    delete.add_argument("dataset_id", help="its id (`tradesim datasets`)")
    delete.set_defaults(run=cmd_delete_dataset)
    run = commands.add_parser(
        "backtest", help="run a strategy file (on_bar(bar, broker)) over a replay in lock-step, then its report"
    )
    run.add_argument("strategy", help="a Python file defining on_bar(bar, broker)")
    run.add_argument("--dataset", required=True, help="the dataset's id (tradesim datasets)")
    run.add_argument("--symbols", help="comma-separated (default: all of the dataset's)")
    run.add_argument("--from", dest="start", help="first bar time, ISO 8601 (default: the data's first)")
    run.add_argument("--to", dest="end", help="last bar time, ISO 8601 (default: the data's last)")
    run.add_argument("--profile", default="realistic", choices=PROFILES)
    run.add_argument("--seed", type=int, default=0, help="the books' seed (same seed, same fills)")
    run.add_argument("--speed", default="max", help="1 to 1000 times real time, or max (default)")
    run.add_argument("--benchmark", help="the symbol held for comparison (default: the first)")
    run.add_argument("--html", help="also write the report as one HTML page to this file")
    run.set_defaults(run=cmd_backtest)
    report = commands.add_parser("report", help="the report of one of your replay simulators")
    report.add_argument("simulator_id")
    report.add_argument("--benchmark", help="the symbol held for comparison (default: the first)")
    report.add_argument("--html", help="also write it as one HTML page to this file")
    report.set_defaults(run=cmd_report)
    watch = commands.add_parser("watch", help="follow prices, orders and positions live (Ctrl-C ends)")
    watch.add_argument("symbols", nargs="*", help="only these symbols (default: all)")
    watch.add_argument("--seconds", type=float, help="stop after this long")
    watch.set_defaults(run=cmd_watch)
    return top


def failure_of(error: BaseException) -> Failure:
    if isinstance(error, Failure):
        return error
    if isinstance(error, ProtocolError):
        auth = error.code in ("invalid_credentials", "token_invalid", "token_revoked", "token_expired")
        code = AUTH if auth or (isinstance(error, ApiError) and error.status == 401) else REFUSED
        return Failure(code, f"{error.code}: {error.message}", dict(error.server_message))
    if isinstance(error, SessionEnded):
        code = {"auth_failed": AUTH, "device_rejected": AUTH, "gave_up": UNREACHABLE}.get(error.reason, REFUSED)
        return Failure(code, f"connection ended: {error}", {"type": "ended", "reason": error.reason})
    if isinstance(error, RequestTimeout | NotConnected | OSError | TimeoutError):
        return Failure(UNREACHABLE, f"{type(error).__name__}: {error}")
    raise error


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        show(asyncio.run(args.run(args)), args.json)
        return OK
    except KeyboardInterrupt:
        return OK if args.command == "watch" else INTERRUPTED
    except Exception as error:
        failure = failure_of(error)
        if args.json:
            print(json.dumps(failure.error or {"type": "error", "message": str(failure)}), file=sys.stderr)
        else:
            print(f"tradesim: {failure}", file=sys.stderr)
        return failure.exit_code
