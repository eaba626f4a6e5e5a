"""The socket's `reset_account` (docs/protocol.md §4c): the same service as POST /api/market/account/reset/."""

from __future__ import annotations

from channels.db import database_sync_to_async

from market_app import journal, services
from market_app.messages import AccountResetDone, ResetAccount
from sessions_app.realtime import Connection, handles
from sessions_app.state import require_own_device


def _reset(user_id: int) -> AccountResetDone:
    reset = services.account_reset(user_id=user_id)
    view = journal.reset_view(reset, journal.account_epochs(user_id=user_id))
    return AccountResetDone(requestId="", success=True, reset=view)


@handles(ResetAccount)
async def reset_account(conn: Connection, message: ResetAccount) -> None:
    require_own_device(conn, message.deviceId)
    done = await database_sync_to_async(_reset)(conn.user_id)
    await conn.send_message(done.model_copy(update={"requestId": message.requestId}))
