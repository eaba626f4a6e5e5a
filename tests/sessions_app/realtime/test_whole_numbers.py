"""A client's integers (`WHOLE` in sessions_app.realtime.message_base) read as JSON Schema reads
`integer`: a number without a fraction, 5.0 as well as 5; strings, booleans and fractions stay refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from market_app.messages import MarketAck, RiskLimits
from simulator_app.messages import StepClock


def test_a_whole_number_with_a_zero_fraction_is_the_integer_in_bounds_and_out() -> None:
    assert RiskLimits.model_validate_json('{"maxOpenOrders": 1994.0}').maxOpenOrders == 1994
    ack = MarketAck.model_validate_json('{"type": "market_ack", "deviceId": "d", "seq": 3.0}')
    assert ack.seq == 3 and isinstance(ack.seq, int)
    with pytest.raises(ValidationError):
        RiskLimits.model_validate_json('{"maxOpenOrders": 10001.0}')


@pytest.mark.parametrize("sent", ['"5"', "true", "5.5", "0.0"])
def test_a_string_a_boolean_a_fraction_or_an_out_of_bounds_integer_is_still_refused(sent: str) -> None:
    with pytest.raises(ValidationError):
        StepClock.model_validate_json(
            f'{{"type": "step_clock", "requestId": "r", "timestamp": 1, "deviceId": "d", "bars": {sent}}}'
        )
