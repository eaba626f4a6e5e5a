"""REST for a user's accounts (docs/protocol.md §4f): list, open, read, change and close them
(market_app.accounts). The bodies are the socket's models (market_app.messages)."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from market_app import accounts, selectors, services
from market_app.http_messages import AccountListQuery, AccountPath
from market_app.messages import AccountOpening, AccountSettings
from market_app.snapshots import trading_account_view
from sessions_app.api.authentication import user_id_of
from sessions_app.api.parsing import parse_body, parse_path, parse_query


def account_id_of_path(account_id: str) -> int:
    return int(parse_path(AccountPath, accountId=account_id).accountId)


class AccountListView(APIView):
    def get(self, request: Request) -> Response:
        query = parse_query(AccountListQuery, request)
        user_id = user_id_of(request)
        services.account_for(user_id)  # a user who never traded has their default account listed
        listed = selectors.accounts_of_user(user_id, closed=query.closed)
        return Response([trading_account_view(account).model_dump(mode="json") for account in listed])

    def post(self, request: Request) -> Response:
        opening = parse_body(AccountOpening, request)
        account = accounts.account_open(user_id=user_id_of(request), opening=opening)
        return Response(trading_account_view(account).model_dump(mode="json"), status=201)


class AccountDetailView(APIView):
    def get(self, request: Request, account_id: str) -> Response:
        account = selectors.account_chosen(user_id=user_id_of(request), account_id=account_id_of_path(account_id))
        return Response(trading_account_view(account).model_dump(mode="json"))

    def patch(self, request: Request, account_id: str) -> Response:
        change = parse_body(AccountSettings, request)
        account = accounts.account_update(
            user_id=user_id_of(request), account_id=account_id_of_path(account_id), change=change
        )
        return Response(trading_account_view(account).model_dump(mode="json"))


class AccountCloseView(APIView):
    def post(self, request: Request, account_id: str) -> Response:
        account = accounts.account_close(user_id=user_id_of(request), account_id=account_id_of_path(account_id))
        return Response(trading_account_view(account).model_dump(mode="json"))
