"""Migrations 0014-0016 on PostgreSQL, with data: every user's orders, fills and positions move into
their one account ("Main", their default and current one). On PostgreSQL a data change and a table
change in one transaction fail ("pending trigger events"), so the data moves in a migration of its own."""

from __future__ import annotations

import uuid

import psycopg

from tests.support.liveserver import base_env, manage
from tests.support.production import fresh_postgres_database


def libpq(database_url: str) -> str:
    return database_url.replace("postgres://", "postgresql://", 1)


def test_existing_trading_data_moves_into_each_users_default_account_on_postgresql() -> None:
    with fresh_postgres_database() as database_url:
        env = base_env(DATABASE_URL=database_url)
        manage(env, "migrate", "market_app", "0013", "-v", "0")
        with psycopg.connect(libpq(database_url), autocommit=True) as db:
            users = [
                db.execute(
                    "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff,"
                    " is_active, date_joined) VALUES ('', false, %s, '', '', '', false, true, now()) RETURNING id",
                    [name],
                ).fetchone()[0]
                for name in ("had", "hadnt")
            ]
            instrument = db.execute("SELECT id FROM market_app_instrument WHERE symbol = 'AAPL'").fetchone()[0]
            db.execute(
                "INSERT INTO market_app_account (user_id, cash, starting_cash, created_at, updated_at, fees_paid,"
                " loss_day, loss_halted_day) VALUES (%s, 70, 100, now(), now(), 0, '', '')",
                [users[0]],
            )
            for user in users:
                order = uuid.uuid4()
                db.execute(
                    "INSERT INTO market_app_order (id, user_id, instrument_id, client_order_id, side, order_type,"
                    " quantity, time_in_force, order_class, triggered, active_at_ms, fee, status, filled_qty, reason,"
                    " created_at, updated_at) VALUES (%s, %s, %s, '', 'buy', 'market', 3, 'gtc', 'simple', false, 0,"
                    " 0, 'filled', 3, '', now(), now())",
                    [order, user, instrument],
                )
                db.execute(
                    "INSERT INTO market_app_fill (id, order_id, user_id, instrument_id, side, quantity, price, fee,"
                    " tick_seq, created_at) VALUES (%s, %s, %s, %s, 'buy', 3, 10, 0, 1, now())",
                    [uuid.uuid4(), order, user, instrument],
                )
                db.execute(
                    "INSERT INTO market_app_position (user_id, instrument_id, quantity, average_price, realized_pnl,"
                    " updated_at) VALUES (%s, %s, 3, 10, 0, now())",
                    [user, instrument],
                )
        manage(env, "migrate", "-v", "0")
        with psycopg.connect(libpq(database_url)) as db:
            rows = db.execute(
                "SELECT u.username, a.name, a.is_default, a.is_current, a.cash,"
                " (SELECT count(*) FROM market_app_order o WHERE o.account_id = a.id),"
                " (SELECT count(*) FROM market_app_fill f WHERE f.account_id = a.id),"
                " (SELECT count(*) FROM market_app_position p WHERE p.account_id = a.id)"
                " FROM market_app_account a JOIN auth_user u ON u.id = a.user_id ORDER BY u.username"
            ).fetchall()
    assert [
        (name, account, default, current, int(cash), counts) for name, account, default, current, cash, *counts in rows
    ] == [
        ("had", "Main", True, True, 70, [1, 1, 1]),
        ("hadnt", "Main", True, True, 100_000, [1, 1, 1]),
    ]
