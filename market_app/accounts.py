"""A user's accounts (docs/protocol.md §4f): opened, changed, closed, and chosen for a simulator as it
starts. Each account has its own cash, positions, orders, journal and report (models.Account).

The user's *current* account is the one their simulator trades: at most one simulator of a user is live,
and stopping it cancels its open orders, so every open order of a user is in their current account.
Starting a simulator on another account makes that one current; without a simulator, the current
account stays the last one traded (a snapshot and REST show it)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from market_app import market_choice, services
from market_app.errors import AccountCode
from market_app.messages import AccountOpening, AccountSettings
from market_app.models import Account, AccountType
from sessions_app.realtime.errors import ErrorDetail, ProtocolError
from sessions_app.rows import one_or_none
from simulator_app import services as simulator_services
from simulator_app.clock import ClockSettings
from simulator_app.messages import MarketChoice
from simulator_app.models import Simulator
from simulator_app.selectors import live_simulator_of_user


def _name_taken(name: str) -> ProtocolError:
    return ProtocolError(
        AccountCode.ACCOUNT_NAME_TAKEN,
        f"you have an open account named {name!r}",
        details=[ErrorDetail(field="name", problem="taken by another open account of yours")],
    )


def _apply(account: Account, change: AccountSettings) -> None:
    """The settings given (not the name, the default flag: their own rules)."""
    if change.profile is not None:
        account.profile = change.profile
    for field, value in (
        ("commission_per_share", change.commissionPerShare),
        ("commission_minimum", change.commissionMinimum),
        ("commission_bps", change.commissionBps),
    ):
        if value is not None:
            setattr(account, field, Decimal(repr(value)))


def _save_named(account: Account, fields: list[str] | None = None) -> None:
    """Save an account whose name may be taken (`fields`: an update of these; None: a new account)."""
    try:
        with transaction.atomic():
            account.save(update_fields=fields)
    except IntegrityError:
        # Two opens or renames to one name raced past the check.
        raise _name_taken(account.name) from None


def _make_default(account: Account) -> None:
    Account.objects.filter(user_id=account.user_id, is_default=True).exclude(pk=account.pk).update(is_default=False)
    account.is_default = True
    account.save(update_fields=["is_default", "updated_at"])


def _make_current(account: Account) -> None:
    Account.objects.filter(user_id=account.user_id, is_current=True).exclude(pk=account.pk).update(is_current=False)
    account.is_current = True
    account.save(update_fields=["is_current", "updated_at"])
    services.account_snapshot_push(account.user_id)


@transaction.atomic
def account_open(*, user_id: int, opening: AccountOpening) -> Account:
    """Open another account for the user (their first, the default one, is made on first use)."""
    services.account_for(user_id)
    open_names = {a.name for a in Account.objects.select_for_update().filter(user_id=user_id, closed_at__isnull=True)}
    if len(open_names) >= settings.MARKET_ACCOUNTS_PER_USER:
        raise ProtocolError(
            AccountCode.ACCOUNT_LIMIT, f"you have {len(open_names)} open accounts, the most allowed: close one first"
        )
    if opening.name in open_names:
        raise _name_taken(opening.name)
    cash = (
        Decimal(settings.MARKET_STARTING_CASH) if opening.startingCash is None else Decimal(repr(opening.startingCash))
    )
    if cash > settings.MARKET_MAX_STARTING_CASH:
        raise ProtocolError(
            AccountCode.STARTING_CASH_ABOVE_CAP,
            f"startingCash is above the cap of {settings.MARKET_MAX_STARTING_CASH}",
            details=[ErrorDetail(field="startingCash", problem=f"at most {settings.MARKET_MAX_STARTING_CASH}")],
        )
    account = Account(
        user_id=user_id,
        name=opening.name,
        cash=cash,
        starting_cash=cash,
        account_type=opening.accountType or AccountType.CASH,
        is_default=False,
        is_current=False,
    )
    _apply(account, opening)
    _save_named(account)
    if opening.default:
        _make_default(account)
    return account


@transaction.atomic
def account_update(*, user_id: int, account_id: int, change: AccountSettings) -> Account:
    """Rename an open account, make it the default, or change its profile or commission schedule."""
    account = services.account_to_change(user_id=user_id, account_id=account_id)
    if change.name is not None and change.name != account.name:
        account.name = change.name
        _save_named(account, ["name", "updated_at"])
    _apply(account, change)
    account.save(
        update_fields=["profile", "commission_per_share", "commission_minimum", "commission_bps", "updated_at"]
    )
    if change.default and not account.is_default:
        _make_default(account)
    if account.is_current:
        services.account_snapshot_push(user_id)  # the snapshot names it
    return account


@transaction.atomic
def account_close(*, user_id: int, account_id: int) -> Account:
    """Close an account that is neither the default nor trading; its history stays. Closing the current
    account makes the default one current. Closing a closed account changes nothing."""
    account = one_or_none(Account.objects.select_for_update().filter(pk=account_id, user_id=user_id))
    if account is None:
        raise ProtocolError(AccountCode.UNKNOWN_ACCOUNT, f"you have no account {account_id}")
    if account.closed_at is not None:
        return account
    if account.is_default:
        raise ProtocolError(AccountCode.DEFAULT_ACCOUNT, "make another account the default before closing this one")
    if account.is_current:
        simulator = live_simulator_of_user(user_id=user_id)
        if simulator is not None:
            raise ProtocolError(
                AccountCode.ACCOUNT_IN_USE, f"its simulator is {simulator.status}; stop it before closing the account"
            )
    was_current = account.is_current
    account.closed_at = timezone.now()
    account.is_current = False
    account.save(update_fields=["closed_at", "is_current", "updated_at"])
    if was_current:
        _make_current(Account.objects.select_for_update().get(user_id=user_id, is_default=True))
    return account


def simulator_start_on_account(
    *,
    user_id: int,
    session_id: Any,
    account_id: int | None,
    profile: str | None,
    choice: MarketChoice | None,
) -> tuple[Simulator, ClockSettings | None]:
    """Start the user's simulator on one of their open accounts (default: the default account), in one
    transaction with making it current: a refused start (one is live already) changes no account."""
    with transaction.atomic():
        services.account_for(user_id)  # the user's first account
        if account_id is None:
            account = Account.objects.select_for_update().get(user_id=user_id, is_default=True)
        else:
            account = services.account_to_change(user_id=user_id, account_id=account_id)
        market, clock = market_choice.market_choice_resolve(user_id=user_id, choice=choice, capital=account.cash)
        simulator = simulator_services.simulator_start(
            user_id=user_id,
            session_id=session_id,
            profile=profile if profile is not None else (account.profile or None),
            market=market,
            clock=clock,
        )
        if not account.is_current:
            _make_current(account)
    return simulator, clock
