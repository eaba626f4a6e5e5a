from __future__ import annotations

from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from sessions_app import selectors
from sessions_app.auth import check_access_token
from sessions_app.errors import HttpCode
from sessions_app.models import AccessToken
from sessions_app.realtime.errors import ProtocolError


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


# For the views behind IsAuthenticated (the default permission), which only a request signed in
# with an access token reaches: DRF types request.auth and request.user loosely, these narrow them.


def access_token_of(request: Request) -> AccessToken:
    """The access token the request authenticated with (BearerTokenAuthentication sets it)."""
    token = request.auth
    if not isinstance(token, AccessToken):
        raise ProtocolError(HttpCode.AUTHENTICATION_REQUIRED)
    return token


def user_id_of(request: Request) -> int:
    """The signed-in user's id."""
    user_id = request.user.pk
    if user_id is None:
        raise ProtocolError(HttpCode.AUTHENTICATION_REQUIRED)
    return user_id
