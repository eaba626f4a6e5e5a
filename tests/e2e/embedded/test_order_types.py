"""The exchange's order types, time in force, brackets, replace, the cancel race, fees and realism
profiles over a real socket (and the REST API) against daphne (embedded: the server process
produces the feed and matches orders)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest
from websockets.sync.client import ClientConnection

from market_app.messages import ExchangeDataStatus
from tests.support.liveserver import DaphneServer, heartbeat, recv_json, recv_until, request, send_json, wait_until
from tests.support.servers import running_server

MARKET = {
    "MARKET_TICK_MS": "100",
    "MARKET_SEED": "7",
    "MARKET_STARTING_CASH": "10000000",
    "MARKET_COMMISSION_PER_SHARE": "0.01",
    "MARKET_COMMISSION_MINIMUM": "1",
    "SIMULATOR_LEASE_TTL_MS": "2000",
    "SIMULATOR_LEASE_RENEW_MS": "500",
}
NONE = ()  # read every message type


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaphneServer]:
    with running_server(tmp_path_factory.mktemp("orders"), **MARKET) as server:
        yield server


class Desk:
    """One trader's socket: requests, and the newest snapshot and tick seen."""

    def __init__(self, creds: dict, ws: ClientConnection) -> None:
        self.creds, self.ws = creds, ws
        self.snapshot: dict = {}
        self.ticks: dict[int, dict] = {}
        self.count = 0

    def send(self, kind: str, **fields: object) -> str:
        self.count += 1
        request_id = f"{kind}-{self.count}"
        send_json(self.ws, request(kind, self.creds["deviceId"], request_id, **fields))
        return request_id

    def reply(self, request_id: str, timeout: float = 10) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            message = self.next(deadline)
            if message.get("requestId") == request_id and message["type"] != "exchange_data_status":
                return message

    def next(self, deadline: float) -> dict:
        """The next message, keeping the newest snapshot and every tick."""
        message = recv_json(self.ws, timeout=max(0.05, deadline - time.monotonic()))
        if message["type"] == "exchange_data_status":
            self.snapshot = message
        elif message["type"] == "exchange_data":
            self.ticks[message["seq"]] = message
        return message

    def order(self, **ticket: object) -> dict:
        reply = self.reply(self.send("place_order", **ticket))
        assert reply["type"] == "order_placed", reply
        return reply["order"]

    def last_price(self, symbol: str) -> float:
        return self.snapshot["symbols"][symbol]["price"]

    def stop_above_the_market(self, **ticket: object) -> dict:
        """A buy stop (or stop-limit) a cent above the last price: the service refuses one the market
        has already passed, which the newest price seen here may not show yet; then again, higher."""
        for _ in range(20):
            last = self.last_price("AAPL")
            if self.ticks:
                last = max(last, self.ticks[max(self.ticks)]["symbols"]["AAPL"]["price"])
            stop = {"stopPrice": on_grid(last + 0.01)}
            if ticket.get("orderType") == "stop_limit":
                stop["limitPrice"] = on_grid(last + 1.0)
            reply = self.reply(self.send("place_order", symbol="AAPL", side="buy", quantity=1, **ticket, **stop))
            if reply["type"] == "order_placed":
                return reply["order"]
            assert reply["code"] == "invalid_stop_price", reply
            self.next(time.monotonic() + 1)  # a newer price
        raise AssertionError("the market kept passing the stop")

    def wait(self, condition, timeout: float = 15) -> dict:  # type: ignore[no-untyped-def]
        """The first snapshot for which `condition(snapshot)` holds (the newest one is checked first)."""
        deadline = time.monotonic() + timeout
        beat = time.monotonic()
        while not (self.snapshot and condition(self.snapshot)):
            if time.monotonic() - beat > 5:  # a long wait keeps the socket alive
                send_json(self.ws, heartbeat(self.creds["deviceId"], simulatorStatus="running"))
                beat = time.monotonic()
            try:
                self.next(min(deadline, time.monotonic() + 5))
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no such snapshot in {timeout} s; the last: {self.snapshot}") from None
        return self.snapshot


@contextmanager
def trader(server: DaphneServer, profile: str | None = "realistic") -> Iterator[Desk]:
    creds = server.issue_token(f"ord-{uuid.uuid4().hex[:8]}")
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        desk = Desk(creds, ws)
        desk.next(time.monotonic() + 10)  # connected
        started = desk.reply(desk.send("start_simulator", **({"profile": profile} if profile else {})))
        assert started["type"] == "simulator_started", started
        desk.wait(lambda s: s["reason"] == "simulator_started")
        desk.wait(lambda s: True)
        yield desk


def status_of(snapshot: dict, order_id: str) -> str | None:
    return snapshot["userOrders"].get(order_id, {}).get("status")


def on_grid(price: float, tick: str = "0.01") -> float:
    return float((Decimal(repr(price)) / Decimal(tick)).quantize(Decimal(1)) * Decimal(tick))


def test_the_profile_is_chosen_at_start_and_shown_in_the_reply_session_info_and_snapshots(
    server: DaphneServer,
) -> None:
    with trader(server, "harsh") as desk:
        info = desk.reply(desk.send("request_session_info"))
        snapshot = desk.wait(lambda s: True)
    creds = server.issue_token(f"ord-{uuid.uuid4().hex[:8]}")
    with server.connect(creds["token"], creds["deviceId"]) as ws:
        send_json(ws, request("start_simulator", creds["deviceId"], "bad", profile="brutal"))
        refused, _ = recv_until(ws, "error")

    assert info["profile"] == "harsh" and snapshot["profile"] == "harsh"
    ExchangeDataStatus.model_validate(snapshot)
    assert refused["code"] == "unknown_profile" and refused["requestId"] == "bad"


def test_stops_trailing_stops_and_day_orders_trade_as_documented(server: DaphneServer) -> None:
    with trader(server) as desk:
        last = desk.last_price("AAPL")
        desk.order(symbol="AAPL", side="buy", orderType="market", quantity=20)
        desk.wait(lambda s: s["userPositions"].get("AAPL", {}).get("quantity") == 20)
        stop = desk.stop_above_the_market(orderType="stop")
        stop_limit = desk.stop_above_the_market(orderType="stop_limit")
        last = desk.last_price("AAPL")
        trailing = desk.order(
            symbol="AAPL", side="sell", orderType="trailing_stop", quantity=5, trailAmount=0.03, timeInForce="day"
        )
        resting = desk.order(symbol="AAPL", side="buy", orderType="limit", quantity=3, limitPrice=on_grid(last * 0.9))
        # One too wide to trigger, to see where a trailing stop stands once a tick has anchored it
        # (the tight one above may trigger before any snapshot shows it standing).
        wide = desk.order(symbol="AAPL", side="sell", orderType="trailing_stop", quantity=1, trailPercent=50.0)

        def standing() -> float | None:
            _, orders = server.request("GET", "/api/market/orders/?status=open", token=desk.creds["token"])
            return next((o.get("trailingStopPrice") for o in orders if o["orderId"] == wide["orderId"]), None)

        assert wait_until(lambda: standing() is not None, 30)
        wide_stands_at = standing()
        done = desk.wait(
            lambda s: all(status_of(s, o["orderId"]) == "filled" for o in (stop, stop_limit, trailing)),
            timeout=30,
        )
        wrong_side = desk.reply(
            desk.send(
                "place_order", symbol="AAPL", side="sell", orderType="stop", quantity=1, stopPrice=on_grid(last * 2)
            )
        )
        both = desk.reply(
            desk.send(
                "place_order",
                symbol="AAPL",
                side="sell",
                orderType="trailing_stop",
                quantity=1,
                trailAmount=1.0,
                trailPercent=1.0,
            )
        )

    assert trailing["timeInForce"] == "day" and trailing["trailAmount"] == 0.03
    assert wide_stands_at is not None and 0 < wide_stands_at < last  # half below the highest price since
    assert done["userOrders"][stop["orderId"]]["triggered"] is True
    assert done["userOrders"][stop["orderId"]]["averagePrice"] >= stop["stopPrice"] - 0.5  # a market after the trigger
    assert status_of(done, resting["orderId"]) == "new"
    assert done["userOrders"][stop_limit["orderId"]]["averagePrice"] <= stop_limit["limitPrice"]
    assert wrong_side["code"] == "invalid_stop_price" and both["code"] == "invalid_trail"


def test_ioc_never_rests_and_fok_is_all_or_nothing(server: DaphneServer) -> None:
    with trader(server) as desk:
        last = desk.last_price("AAPL")
        ioc = desk.order(
            symbol="AAPL", side="buy", orderType="limit", quantity=5, limitPrice=on_grid(last * 0.9), timeInForce="ioc"
        )
        fok = desk.order(symbol="BTC-USD", side="buy", orderType="market", quantity=50, timeInForce="fok")
        small = desk.order(symbol="AAPL", side="buy", orderType="market", quantity=5, timeInForce="fok")
        done = desk.wait(
            lambda s: (
                status_of(s, ioc["orderId"]) == "canceled"
                and status_of(s, fok["orderId"]) == "canceled"
                and status_of(s, small["orderId"]) == "filled"
            )
        )

    assert done["userOrders"][ioc["orderId"]]["reason"].startswith("immediate or cancel")
    assert done["userOrders"][fok["orderId"]]["filledQty"] == 0
    assert done["userOrders"][fok["orderId"]]["reason"].startswith("fill or kill")


def test_a_brackets_life_entry_fills_exits_activate_and_one_cancels_the_other(server: DaphneServer) -> None:
    with trader(server) as desk:
        last = desk.last_price("AAPL")
        entry = desk.order(
            symbol="AAPL",
            side="buy",
            orderType="market",
            quantity=10,
            orderClass="bracket",
            takeProfit={"limitPrice": on_grid(last * 1.0006)},
            stopLoss={"stopPrice": on_grid(last * 0.9994)},
        )

        def exits(snapshot: dict) -> list[dict]:
            return [o for o in snapshot["userOrders"].values() if o.get("parentOrderId") == entry["orderId"]]

        active = desk.wait(lambda s: len(exits(s)) == 2)
        ended = desk.wait(lambda s: sorted(o["status"] for o in exits(s)) == ["canceled", "filled"], timeout=60)
        bad = desk.reply(
            desk.send(
                "place_order",
                symbol="AAPL",
                side="buy",
                orderType="market",
                quantity=1,
                orderClass="bracket",
                takeProfit={"limitPrice": on_grid(last * 0.9)},
                stopLoss={"stopPrice": on_grid(last * 0.8)},
            )
        )

    assert status_of(active, entry["orderId"]) == "filled"
    legs = {o["orderType"]: o for o in exits(active)}
    assert set(legs) == {"limit", "stop"} and legs["limit"]["ocoGroup"] == legs["stop"]["ocoGroup"]
    assert all(o["quantity"] == 10 and o["side"] == "sell" for o in legs.values())
    canceled = next(o for o in exits(ended) if o["status"] == "canceled")
    assert canceled["reason"].startswith("one cancels other")
    assert ended["userPositions"]["AAPL"]["quantity"] == 0
    assert bad["code"] == "invalid_bracket"


def test_a_replace_amends_an_open_order_and_a_filled_one_is_refused(server: DaphneServer) -> None:
    with trader(server) as desk:
        last = desk.last_price("MSFT")
        resting = desk.order(symbol="MSFT", side="buy", orderType="limit", quantity=4, limitPrice=on_grid(last * 0.8))
        replaced = desk.reply(
            desk.send("replace_order", orderId=resting["orderId"], limitPrice=on_grid(last * 0.85), quantity=6)
        )
        filled = desk.order(symbol="MSFT", side="buy", orderType="market", quantity=1)
        desk.wait(lambda s: status_of(s, filled["orderId"]) == "filled")
        late = desk.reply(desk.send("replace_order", orderId=filled["orderId"], quantity=2))
        status, rest = server.request(
            "POST", f"/api/market/orders/{resting['orderId']}/replace/", {"quantity": 5}, token=desk.creds["token"]
        )

    assert replaced["type"] == "order_replaced" and replaced["order"]["quantity"] == 6
    assert replaced["order"]["limitPrice"] == on_grid(last * 0.85)
    assert late["code"] == "order_not_replaceable"
    assert status == 200 and rest["quantity"] == 5


# How a cancel raced against a fill was answered (the reply's type or error code), and the final
# status of the order each answer implies: the client always learns which won.
FINAL_STATUS_AFTER = {"cancel_too_late": "filled", "order_not_cancelable": "filled", "order_canceled": "canceled"}
Cancel = Callable[[str], tuple[str, dict]]


def fill_beats_a_cancel(desk: Desk, cancel: Cancel, attempts: int = 10) -> tuple[dict, dict]:
    """Market orders, each canceled while it waits out the harsh entry latency (250 ms), until the
    fill wins a race: the cancel arrives while the order is open and the fill completes it before
    the cancel takes effect. Each answer, whoever won, must match the order's final status.
    Returns the losing cancel's answer and the filled order."""
    outcomes = []
    for _ in range(attempts):
        order = desk.order(symbol="AAPL", side="buy", orderType="market", quantity=1)
        # Aimed at the last of the order's latency: it arrives while the order is open and takes
        # effect after the first tick the order trades on. A slow machine may make either side miss.
        time.sleep(0.2)
        outcome, answer = cancel(order["orderId"])
        final = desk.wait(lambda s, o=order["orderId"]: status_of(s, o) in ("filled", "canceled"))
        ended = final["userOrders"][order["orderId"]]
        assert FINAL_STATUS_AFTER.get(outcome) == ended["status"], (outcome, answer, ended)
        outcomes.append(outcome)
        if outcome == "cancel_too_late":
            return answer, ended
    raise AssertionError(f"the fill never won the race in {attempts} tries: {outcomes}")


def test_a_cancel_can_lose_the_race_against_a_fill_and_the_client_sees_which_won(server: DaphneServer) -> None:
    with trader(server, "harsh") as desk:
        token = desk.creds["token"]

        def over_the_socket(order_id: str) -> tuple[str, dict]:
            reply = desk.reply(desk.send("cancel_order", orderId=order_id))
            return (reply["code"] if reply["type"] == "error" else reply["type"]), reply

        def over_rest(order_id: str) -> tuple[str, dict]:
            status, body = server.request("POST", f"/api/market/orders/{order_id}/cancel/", token=token)
            assert status in (200, 409), (status, body)
            return (body["code"] if status == 409 else "order_canceled"), body

        lost, filled = fill_beats_a_cancel(desk, over_the_socket)
        rest_lost, rest_filled = fill_beats_a_cancel(desk, over_rest)
        last = desk.last_price("AAPL")
        resting = desk.order(symbol="AAPL", side="buy", orderType="limit", quantity=1, limitPrice=on_grid(last * 0.8))
        won = desk.reply(desk.send("cancel_order", orderId=resting["orderId"]))
        rest_resting = desk.order(
            symbol="AAPL", side="buy", orderType="limit", quantity=1, limitPrice=on_grid(last * 0.8)
        )
        won_status, rest_won = server.request(
            "POST", f"/api/market/orders/{rest_resting['orderId']}/cancel/", token=token
        )

    assert lost["type"] == "error" and lost["code"] == "cancel_too_late", lost
    assert filled["filledQty"] == 1 and rest_filled["filledQty"] == 1
    assert rest_lost["code"] == "cancel_too_late", rest_lost
    assert won["type"] == "order_canceled" and won["order"]["status"] == "canceled"
    assert (won_status, rest_won["status"]) == (200, "canceled")


def test_fees_show_on_fills_and_the_profiles_differ_on_the_same_seed(server: DaphneServer) -> None:
    results = {}
    for profile in ("ideal", "realistic", "harsh"):
        with trader(server, profile) as desk:
            order = desk.order(symbol="AAPL", side="buy", orderType="market", quantity=200)
            done = desk.wait(lambda s, o=order: status_of(s, o["orderId"]) == "filled")
            _, fills = server.request("GET", "/api/market/fills/", token=desk.creds["token"])
            results[profile] = (done, fills, dict(desk.ticks))

    for profile, factor in (("ideal", 0), ("realistic", 1), ("harsh", 2)):
        snapshot, fills, ticks = results[profile]
        account = snapshot["account"]
        fee = sum(fill["fee"] for fill in fills)
        assert fee == pytest.approx(2.0 * factor)  # 200 x 0.01, above the minimum of 1
        assert account["feesPaid"] == pytest.approx(fee)
        spent = sum(fill["quantity"] * fill["price"] for fill in fills)
        assert account["cash"] == pytest.approx(10_000_000 - spent - fee, abs=1e-6)
        if profile == "ideal":  # fills at the tick's own price
            assert all(
                fill["price"] == ticks[fill["tickSeq"]]["symbols"]["AAPL"]["price"]
                for fill in fills
                if fill["tickSeq"] in ticks
            )
        else:  # a buy pays the ask: above the tick's price, or at it when a one-tick spread leans down
            paid = [(fill["price"], ticks[fill["tickSeq"]]["symbols"]["AAPL"]["price"]) for fill in fills
                    if fill["tickSeq"] in ticks]  # fmt: skip
            assert all(price >= tick_price for price, tick_price in paid), (profile, paid)


def test_a_cancel_waiting_out_its_latency_lets_other_messages_by_and_still_answers_before_its_snapshot(
    server: DaphneServer,
) -> None:
    with trader(server, "harsh") as desk:
        last = desk.last_price("AAPL")
        resting = desk.order(symbol="AAPL", side="buy", orderType="limit", quantity=1, limitPrice=on_grid(last * 0.8))
        cancel_id = desk.send("cancel_order", orderId=resting["orderId"])  # harsh: takes effect 250 ms later
        send_json(desk.ws, heartbeat(desk.creds["deviceId"], simulatorStatus="running"))
        deadline = time.monotonic() + 10
        seen = []
        while "snapshot" not in seen:
            message = desk.next(deadline)
            if message["type"] == "heartbeat_ack" or message.get("requestId") == cancel_id:
                seen.append(message["type"])
            elif message["type"] == "exchange_data_status" and status_of(message, resting["orderId"]) == "canceled":
                seen.append("snapshot")

    # The beat sent after the cancel is answered first; the cancel's reply still precedes its snapshot.
    assert seen == ["heartbeat_ack", "order_canceled", "snapshot"]
