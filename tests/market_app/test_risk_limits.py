"""An account's risk limits (market_app.risk, docs/protocol.md §4c): each refuses an order beyond it
with its own code and nothing changes; an operator's cap holds every account and caps what a user sets;
set over REST (and the socket: tests/e2e/embedded/test_market_trading.py)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from market_app import risk, selectors, services
from market_app.errors import AccountCode, MarketCode
from market_app.messages import OrderAmendment, RiskLimits
from market_app.models import Account, Order
from market_app.prices import Quote
from sessions_app.realtime.errors import ProtocolError
from tests.market_app.test_trading_services import D, holding, place, set_prices, trader
from tests.support.factories import issue_token

# --- The rules (no database) ----------------------------------------------------------------------------

NOTHING_HELD = risk.Exposure(
    equity=D(10_000), positions_value=D(0), open_buys_value=D(0), symbol_value=D(0), open_orders=0
)


def refusal(limits: risk.Limits, exposure: risk.Exposure = NOTHING_HELD, **order: object) -> str | None:
    fields = {"value": D(1_000), "buys": D(1_000), "new": True} | order
    try:
        risk.check_order(limits, exposure=exposure, **fields)  # type: ignore[arg-type]
    except ProtocolError as error:
        return str(error.code)
    return None


def test_an_order_at_a_limit_passes_and_one_a_cent_above_is_refused_with_that_limits_code() -> None:
    assert refusal(risk.Limits(max_order_value=D(1_000))) is None
    assert refusal(risk.Limits(max_order_value=D("999.99"))) == MarketCode.ORDER_VALUE_LIMIT
    assert refusal(risk.Limits(max_position_value=D(1_000))) is None
    assert refusal(risk.Limits(max_position_value=D("999.99"))) == MarketCode.POSITION_VALUE_LIMIT
    assert refusal(risk.Limits(max_leverage=D("0.1"))) is None  # 1,000 of 10,000
    assert refusal(risk.Limits(max_leverage=D("0.0999"))) == MarketCode.LEVERAGE_LIMIT


def test_what_the_account_holds_and_has_asked_for_counts_towards_the_position_and_leverage_limits() -> None:
    exposure = risk.Exposure(
        equity=D(10_000), positions_value=D(3_000), open_buys_value=D(1_000), symbol_value=D(2_500), open_orders=1
    )
    assert refusal(risk.Limits(max_position_value=D(3_500)), exposure) is None
    assert refusal(risk.Limits(max_position_value=D(3_499)), exposure) == MarketCode.POSITION_VALUE_LIMIT
    assert refusal(risk.Limits(max_leverage=D("0.5")), exposure) is None  # 3,000 + 1,000 + 1,000
    assert refusal(risk.Limits(max_leverage=D("0.49")), exposure) == MarketCode.LEVERAGE_LIMIT


def test_a_sell_is_held_only_to_the_order_value_and_a_replace_not_to_the_open_orders_count() -> None:
    crowded = risk.Exposure(
        equity=D(1_000), positions_value=D(900), open_buys_value=D(0), symbol_value=D(900), open_orders=3
    )
    tight = risk.Limits(max_position_value=D(1), max_leverage=D("0.01"), max_open_orders=5)
    assert refusal(tight, crowded, buys=D(0)) is None
    assert refusal(risk.Limits(max_order_value=D(999)), crowded, buys=D(0)) == MarketCode.ORDER_VALUE_LIMIT
    assert refusal(risk.Limits(max_open_orders=3), crowded, buys=D(0)) == MarketCode.OPEN_ORDERS_LIMIT
    assert refusal(risk.Limits(max_open_orders=3), crowded, buys=D(0), new=False) is None


def test_a_cap_holds_an_account_without_a_limit_and_the_lower_of_the_two_counts() -> None:
    caps = risk.Limits(max_order_value=D(500), max_open_orders=10)
    mine = risk.Limits(max_order_value=D(800), max_open_orders=4, max_leverage=D(2))

    assert risk.Limits().under(caps) == caps
    assert mine.under(caps) == risk.Limits(max_order_value=D(500), max_open_orders=4, max_leverage=D(2))
    assert mine.above(caps) == ["max_order_value"]


def test_the_daily_loss_is_reached_at_the_limit_below_the_days_start_and_not_without_a_start() -> None:
    assert risk.loss_reached(D(500), start=D(10_000), equity=D(9_500))
    assert not risk.loss_reached(D(500), start=D(10_000), equity=D("9500.01"))
    assert not risk.loss_reached(None, start=D(10_000), equity=D(0))
    assert not risk.loss_reached(D(500), start=None, equity=D(0))


# --- Orders against the account's limits (the ORM) ------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("default_instruments", "commission_free")
class TestOrdersAgainstTheLimits:
    def test_each_limit_refuses_a_new_order_with_its_code_and_records_nothing(self) -> None:
        who = trader()
        set_prices({"AAPL": "100.00", "MSFT": "400.00"})
        holding(who, 10.0, "100")  # 1,000 of AAPL; cash 99,000
        place(who.user_id, orderType="limit", limitPrice=90.0, quantity=5.0)  # 450 of AAPL buying
        cases = {
            MarketCode.ORDER_VALUE_LIMIT: RiskLimits(maxOrderValue=1_999.0),
            MarketCode.POSITION_VALUE_LIMIT: RiskLimits(maxPositionValue=3_449.0),
            MarketCode.OPEN_ORDERS_LIMIT: RiskLimits(maxOpenOrders=1),
            MarketCode.LEVERAGE_LIMIT: RiskLimits(maxLeverage=0.0344),
        }
        for code, limits in cases.items():
            services.account_risk_limits_set(user_id=who.user_id, limits=limits)
            with pytest.raises(ProtocolError) as refused:
                place(who.user_id, quantity=20.0)  # 2,000 more of AAPL
            assert refused.value.code == code, code
        assert Order.objects.filter(user_id=who.user_id).count() == 2
        assert Account.objects.get(user_id=who.user_id).cash == D(99_000)

        services.account_risk_limits_set(
            user_id=who.user_id,
            limits=RiskLimits(maxOrderValue=2_000.0, maxPositionValue=3_450.0, maxOpenOrders=2, maxLeverage=0.0345),
        )
        assert place(who.user_id, quantity=20.0).status == "new"  # each exactly at its limit

    def test_a_replace_that_grows_a_buy_beyond_a_limit_is_refused_and_the_order_stays(self) -> None:
        who = trader()
        set_prices({"AAPL": "100.00"})
        order = place(who.user_id, orderType="limit", limitPrice=90.0, quantity=10.0)
        services.account_risk_limits_set(user_id=who.user_id, limits=RiskLimits(maxOrderValue=1_000.0))

        with pytest.raises(ProtocolError) as refused:
            services.order_replace(user_id=who.user_id, order_id=order.id, amendment=OrderAmendment(quantity=12.0))

        assert refused.value.code == MarketCode.ORDER_VALUE_LIMIT
        assert Order.objects.get(pk=order.pk).quantity == D(10)

    @override_settings(RISK_MAX_ORDER_VALUE_CAP=Decimal(500), RISK_MAX_OPEN_ORDERS_CAP=3)
    def test_the_operators_cap_holds_an_account_without_limits_and_a_limit_above_it_is_refused(self) -> None:
        who = trader()
        set_prices({"AAPL": "100.00"})
        with pytest.raises(ProtocolError) as refused:
            place(who.user_id, quantity=6.0)
        assert refused.value.code == MarketCode.ORDER_VALUE_LIMIT

        with pytest.raises(ProtocolError) as above:
            services.account_risk_limits_set(
                user_id=who.user_id, limits=RiskLimits(maxOrderValue=600.0, maxOpenOrders=4)
            )
        assert above.value.code == AccountCode.LIMIT_ABOVE_CAP
        assert [d.field for d in above.value.details] == ["limits.maxOrderValue", "limits.maxOpenOrders"]
        assert not Account.objects.filter(user_id=who.user_id, max_order_value__isnull=False).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("default_instruments", "commission_free")
class TestTheDailyLossLimit:
    @pytest.fixture(autouse=True)
    def hundred_tick_days(self, settings: Any) -> None:
        settings.MARKET_DAY_TICKS = 100

    def watch(self, who_id: int, aapl: str, seq: int) -> list[int]:
        quotes = {"AAPL": Quote(price=D(aapl), open=D(aapl), volume=1)}
        return services.daily_losses_watch(user_ids=[who_id], quotes=quotes, day=selectors.feed_day(seq))

    def test_a_days_loss_past_the_limit_cancels_the_open_orders_and_refuses_new_ones_until_the_next_day(self) -> None:
        who = trader()
        set_prices({"AAPL": "100.00"}, seq=101)
        holding(who, 100.0, "100")  # 10,000 of AAPL; equity 100,000
        resting = place(who.user_id, orderType="limit", limitPrice=50.0, quantity=1.0)
        services.account_risk_limits_set(user_id=who.user_id, limits=RiskLimits(dailyLossLimit=500.0))

        assert self.watch(who.user_id, "100.00", 101) == []  # the day's start: 100,000
        assert self.watch(who.user_id, "95.01", 150) == []  # 499 down
        assert self.watch(who.user_id, "95.00", 160) == [who.user_id]  # 500 down
        assert self.watch(who.user_id, "90.00", 170) == []  # stopped once

        assert Order.objects.get(pk=resting.pk).status == "canceled"
        assert Order.objects.get(pk=resting.pk).reason == "the daily loss limit of 500 was reached"
        set_prices({"AAPL": "95.00"}, seq=199)
        with pytest.raises(ProtocolError) as refused:
            place(who.user_id, quantity=1.0)
        assert refused.value.code == MarketCode.DAILY_LOSS_LIMIT
        set_prices({"AAPL": "95.00"}, seq=200)  # the next day
        assert place(who.user_id, quantity=1.0).status == "new"
        assert self.watch(who.user_id, "95.00", 200) == []  # its start: 99,500
        assert Account.objects.get(user_id=who.user_id).loss_day_start_equity == D(99_500)

    @override_settings(RISK_DAILY_LOSS_LIMIT_CAP=Decimal(100))
    def test_the_operators_cap_watches_an_account_without_a_daily_loss_limit(self) -> None:
        who = trader()
        set_prices({"AAPL": "100.00"}, seq=1)
        holding(who, 10.0, "100")
        assert self.watch(who.user_id, "100.00", 1) == []
        assert self.watch(who.user_id, "90.00", 2) == [who.user_id]


# --- Over REST ------------------------------------------------------------------------------------------


@pytest.mark.django_db
@override_settings(RISK_MAX_LEVERAGE_CAP=Decimal(2))
def test_limits_are_read_and_set_whole_over_rest_cleared_by_an_empty_put_and_one_above_its_cap_is_a_422() -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_token().token}")
    nothing = {
        "maxOrderValue": None,
        "maxPositionValue": None,
        "maxOpenOrders": None,
        "maxLeverage": None,
        "dailyLossLimit": None,
    }

    assert client.get("/api/market/account/limits/").json() == {
        "limits": nothing,
        "caps": nothing | {"maxLeverage": 2.0},
    }
    put = client.put("/api/market/account/limits/", {"maxOrderValue": 50_000, "maxLeverage": 1.5}, format="json")
    assert put.status_code == 200, put.content
    assert put.json()["limits"] == nothing | {"maxOrderValue": 50_000.0, "maxLeverage": 1.5}
    again = client.put("/api/market/account/limits/", {"maxOpenOrders": 5}, format="json")
    assert again.json()["limits"] == nothing | {"maxOpenOrders": 5}  # a PUT sets them all

    above = client.put("/api/market/account/limits/", {"maxLeverage": 3}, format="json")
    assert above.status_code == 422
    assert above.json()["code"] == "limit_above_cap"
    assert above.json()["details"] == [{"field": "limits.maxLeverage", "problem": "at most 2"}]
    assert client.get("/api/market/account/limits/").json()["limits"] == nothing | {"maxOpenOrders": 5}
    wrong = client.put("/api/market/account/limits/", {"maxOpenOrders": 0}, format="json")
    assert (wrong.status_code, wrong.json()["code"]) == (400, "invalid_request")
    whole = client.put("/api/market/account/limits/", {"maxOpenOrders": 7.0}, format="json")  # JSON's integer
    assert whole.json()["limits"]["maxOpenOrders"] == 7
    cleared = client.put("/api/market/account/limits/")  # no body: no limits
    assert (cleared.status_code, cleared.json()["limits"]) == (200, nothing)
    too_small = client.put("/api/market/account/limits/", {"maxLeverage": 5e-324}, format="json")
    assert too_small.status_code == 400  # it would be stored as 0
    for not_an_object in ("null", "[]", "0"):
        refused = client.put("/api/market/account/limits/", not_an_object, content_type="application/json")
        assert (refused.status_code, refused.json()["code"]) == (400, "invalid_request"), not_an_object
