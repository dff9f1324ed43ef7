"""A relying party written with Authlib (Debian's python3-authlib), as a Python service would use it.

Driven by test/integration/interop-authlib.test.ts: it discovers the OP, prints the authorization URL
it wants the user sent to (a JSON line on stdout), reads back the URL the user came back to (a line on
stdin), exchanges the code (PKCE S256, client_secret_basic), verifies the ID token itself with
authlib.jose against the OP's JWKS (signature, iss, aud, exp, iat, nonce, at_hash), calls userinfo,
and prints what it got as a JSON line. Anything wrong: a message on stderr and exit status 1.

Environment: ISSUER, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI.
"""

import base64
import json
import os
import sys

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt
from authlib.oidc.core import CodeIDToken


def main() -> None:
    issuer = os.environ["ISSUER"]
    client_id = os.environ["CLIENT_ID"]
    metadata = requests.get(issuer + "/.well-known/openid-configuration", timeout=10).json()
    if metadata["issuer"] != issuer:
        raise SystemExit("discovery: issuer mismatch")
    client = OAuth2Session(
        client_id,
        os.environ["CLIENT_SECRET"],
        scope="openid email profile",
        redirect_uri=os.environ["REDIRECT_URI"],
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    code_verifier = generate_token(48)
    nonce = generate_token(20)
    url, state = client.create_authorization_url(metadata["authorization_endpoint"], code_verifier=code_verifier, nonce=nonce)
    print(json.dumps({"authorization_url": url}), flush=True)

    callback = sys.stdin.readline().strip()
    # Authlib checks the state of the response against the one it sent.
    token = client.fetch_token(metadata["token_endpoint"], authorization_response=callback, state=state, code_verifier=code_verifier)

    jwks = JsonWebKey.import_key_set(requests.get(metadata["jwks_uri"], timeout=10).json())
    claims = jwt.decode(
        token["id_token"],
        jwks,
        claims_cls=CodeIDToken,
        claims_options={"iss": {"essential": True, "value": issuer}},
        claims_params={"nonce": nonce, "client_id": client_id, "access_token": token["access_token"]},
    )
    claims.validate(leeway=60)
    header = json.loads(_header(token["id_token"]))
    userinfo = client.get(metadata["userinfo_endpoint"], timeout=10)
    userinfo.raise_for_status()
    print(json.dumps({"id_token_header": header, "id_token_claims": dict(claims), "userinfo": userinfo.json()}), flush=True)


def _header(compact: str) -> str:
    """The protected header of a compact JWS, as JSON text."""
    segment = compact.split(".")[0]
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)).decode()


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except Exception as error:  # the test prints this
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
