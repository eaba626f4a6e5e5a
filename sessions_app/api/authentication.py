from __future__ import annotations

from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from sessions_app import selectors
from sessions_app.auth import check_access_token
from sessions_app.errors import HttpCode
from sessions_app.models import AccessToken
from sessions_app.realtime import ProtocolError


class BearerTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <token>` with a token from POST /api/auth/token/."""

    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[object, AccessToken] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise ProtocolError(HttpCode.AUTHENTICATION_REQUIRED, "malformed Authorization header")
        token = check_access_token(selectors.access_token_by_raw(parts[1].decode("latin-1")))
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'
