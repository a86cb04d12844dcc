"""A token server on loopback that plays Microsoft's and Google's token endpoints, and
answers Dovecot's oauth2 passdb (``introspection_mode = post``) about the tokens it gave.

- Microsoft (HTTPS, as msal requires): ``/TENANT/v2.0/.well-known/openid-configuration``
  and ``/TENANT/oauth2/v2.0/token``, the client-credentials grant with the client secret
  or a client assertion (a JWT signed with the app's certificate key, checked against
  the certificate), scope ``https://outlook.office365.com/.default``.
- Google (same server): ``/google/token``, the JWT-bearer grant (RFC 7523) signed with the
  service account's key, checked for issuer, audience, scope and subject.
- ``/introspect/m365`` and ``/introspect/google`` (plain HTTP, for Dovecot): RFC 7662
  answers. A Microsoft token is the application's: it names the app, and the Dovecot
  passdb compares domains only (``username_format = %d``); a Google token names the
  mailbox it was issued for.

Tokens live `lifetime` seconds. `refuse()` makes the token endpoints answer 400 and the
introspection call every issued token inactive (revocation); `accept()` ends that;
`down` answers 503.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

HOST = "127.0.0.1"
TENANT = "agency.example"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
M365_SCOPE = "https://outlook.office365.com/.default"
GOOGLE_SCOPE = "https://mail.google.com/"
GOOGLE_AUDIENCE = "https://oauth2.googleapis.com/token"
SERVICE_ACCOUNT = "ackwatch@agency-project.iam.gserviceaccount.com"


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def _certificate(key: rsa.RSAPrivateKey, name: str, *, server: bool) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(hours=1))
               .not_valid_after(now + dt.timedelta(days=2)))
    if server:
        import ipaddress

        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]),
            critical=False).add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True)
    return builder.sign(key, hashes.SHA256())


@dataclass
class Issued:
    provider: str  # "m365" | "google"
    subject: str  # the app's client id, or the mailbox
    expires: float  # time.time()


@dataclass
class TokenServer:
    directory: Path
    lifetime: float = 3600.0
    client_secret: str = field(default_factory=lambda: "cs-" + secrets.token_urlsafe(24))
    refusing: bool = False
    down: bool = False
    issued: dict[str, Issued] = field(default_factory=dict)
    grants: list[tuple[str, str]] = field(default_factory=list)  # (provider, subject)
    introspections: int = 0
    assertion_errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        server_key = _key()
        self.ca_file = self.directory / "tokenserver.crt"
        self.ca_file.write_bytes(_certificate(server_key, "localhost", server=True)
                                 .public_bytes(serialization.Encoding.PEM))
        server_key_file = self.directory / "tokenserver.key"
        server_key_file.write_text(_pem(server_key))
        # The Microsoft app's certificate and the Google service account's key.
        self.app_key = _key()
        self.app_certificate = _certificate(self.app_key, "ackwatch-app", server=False)
        self.certificate_file = self.directory / "m365-cert.pem"
        self.certificate_file.write_bytes(
            self.app_certificate.public_bytes(serialization.Encoding.PEM))
        self.private_key_file = self.directory / "m365-key.pem"
        self.private_key_file.write_text(_pem(self.app_key))
        self.google_key = _key()
        self._https = ThreadingHTTPServer((HOST, 0), _handler(self))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.ca_file, server_key_file)
        self._https.socket = context.wrap_socket(self._https.socket, server_side=True)
        self._http = ThreadingHTTPServer((HOST, 0), _handler(self))
        self.https_base = f"https://{HOST}:{self._https.server_address[1]}"
        self.http_base = f"http://{HOST}:{self._http.server_address[1]}"
        self._threads = [threading.Thread(target=s.serve_forever, daemon=True)
                         for s in (self._https, self._http)]
        for thread in self._threads:
            thread.start()

    # ------------------------------------------------------------------ for tests
    @property
    def m365_token_url(self) -> str:
        return f"{self.https_base}/{TENANT}/oauth2/v2.0/token"

    @property
    def google_token_url(self) -> str:
        return f"{self.https_base}/google/token"

    def service_account_json(self, token_uri: str | None = None) -> str:
        return json.dumps({
            "type": "service_account", "project_id": "agency-project",
            "private_key_id": "k1", "private_key": _pem(self.google_key),
            "client_email": SERVICE_ACCOUNT, "client_id": "1234567890",
            "token_uri": token_uri or self.google_token_url,
        })

    def refuse(self) -> None:
        with self._lock:
            self.refusing = True

    def accept(self) -> None:
        with self._lock:
            self.refusing = False

    def secrets_issued(self) -> list[str]:
        """Every secret that must never be shown: tokens, the client secret, the keys."""
        with self._lock:
            tokens = list(self.issued)
        return [*tokens, self.client_secret, _pem(self.app_key), _pem(self.google_key)]

    def stop(self) -> None:
        for server in (self._https, self._http):
            server.shutdown()
            server.server_close()

    # ------------------------------------------------------------------ endpoints
    def _issue(self, provider: str, subject: str) -> dict:
        token = f"{provider}-" + secrets.token_urlsafe(32)
        with self._lock:
            self.issued[token] = Issued(provider, subject, time.time() + self.lifetime)
            self.grants.append((provider, subject))
        return {"access_token": token, "token_type": "Bearer",
                "expires_in": int(self.lifetime)}

    def m365_token(self, form: dict[str, str]) -> tuple[int, dict]:
        if form.get("grant_type") != "client_credentials":
            return 400, _error("unsupported_grant_type", "AADSTS70003: client_credentials only")
        if form.get("client_id") != CLIENT_ID:
            return 400, _error("unauthorized_client", "AADSTS700016: Application with identifier "
                               f"'{form.get('client_id')}' was not found in the directory")
        if form.get("scope") != M365_SCOPE:
            return 400, _error("invalid_scope", f"AADSTS70011: scope {form.get('scope')!r}")
        if "client_secret" in form:
            if form["client_secret"] != self.client_secret:
                return 401, _error("invalid_client", "AADSTS7000215: Invalid client secret "
                                   "provided.")
        elif not self._assertion_valid(form):
            return 401, _error("invalid_client", "AADSTS700027: Client assertion failed "
                               "signature validation.")
        if self.refusing:
            return 400, _error("unauthorized_client", "AADSTS7000112: Application is disabled.")
        return 200, self._issue("m365", CLIENT_ID)

    def _assertion_valid(self, form: dict[str, str]) -> bool:
        if form.get("client_assertion_type") != (
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"):
            return False
        assertion = form.get("client_assertion", "")
        der = self.app_certificate.public_bytes(serialization.Encoding.DER)
        thumbprints = {base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=")
                       .decode(), base64.urlsafe_b64encode(hashlib.sha1(der).digest())
                       .rstrip(b"=").decode()}
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, self.app_key.public_key(), algorithms=["RS256", "PS256"],
                                audience=self.m365_token_url)
        except jwt.PyJWTError as exc:
            self.assertion_errors.append(repr(exc))
            return False
        stamp = str(header.get("x5t#S256") or header.get("x5t") or "").rstrip("=")
        return claims.get("iss") == claims.get("sub") == CLIENT_ID and stamp in thumbprints

    def google_token(self, form: dict[str, str]) -> tuple[int, dict]:
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, _error("unsupported_grant_type", "jwt-bearer only")
        try:
            # google-auth signs for Google's own endpoint whatever the key's token_uri.
            claims = jwt.decode(form.get("assertion", ""), self.google_key.public_key(),
                                algorithms=["RS256"],
                                audience=[GOOGLE_AUDIENCE, self.google_token_url])
        except jwt.PyJWTError as exc:
            return 400, _error("invalid_grant", f"Invalid JWT Signature. ({type(exc).__name__})")
        if claims.get("iss") != SERVICE_ACCOUNT:
            return 400, _error("invalid_grant", "Invalid issuer")
        if claims.get("scope") != GOOGLE_SCOPE:
            return 400, _error("invalid_scope", f"scope {claims.get('scope')!r}")
        subject = claims.get("sub")
        if not subject:
            return 400, _error("invalid_grant", "no subject: domain-wide delegation needs one")
        if self.refusing:
            return 401, _error("unauthorized_client", "Client is unauthorized to retrieve "
                               "access tokens using this method, or client not authorized "
                               "for any of the scopes requested.")
        return 200, self._issue("google", subject)

    def introspect(self, provider: str, form: dict[str, str]) -> dict:
        with self._lock:
            self.introspections += 1
            issued = self.issued.get(form.get("token", ""))
            refusing = self.refusing
        if (issued is None or issued.provider != provider or refusing
                or issued.expires < time.time()):
            return {"active": "false", "username": ""}
        username = issued.subject if provider == "google" else f"app-{issued.subject}"
        scope = GOOGLE_SCOPE if provider == "google" else M365_SCOPE
        return {"active": "true", "username": username, "scope": scope}


def _error(error: str, description: str) -> dict:
    return {"error": error, "error_description": description}


def _handler(server: TokenServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _answer(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == f"/{TENANT}/v2.0/.well-known/openid-configuration":
                base = f"{server.https_base}/{TENANT}"
                self._answer(200, {"token_endpoint": f"{base}/oauth2/v2.0/token",
                                   "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                                   "issuer": f"{base}/v2.0"})
            elif self.path.endswith("/.well-known/openid-configuration"):
                self._answer(400, _error("invalid_tenant", "AADSTS90002: Tenant not found."))
            else:
                self._answer(404, {})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace")
            form = {k: v[0] for k, v in parse_qs(body).items()}
            if server.down and not self.path.startswith("/introspect/"):
                self._answer(503, {"error": "temporarily_unavailable"})
            elif self.path == f"/{TENANT}/oauth2/v2.0/token":
                self._answer(*server.m365_token(form))
            elif self.path == "/google/token":
                self._answer(*server.google_token(form))
            elif self.path in ("/introspect/m365", "/introspect/google"):
                self._answer(200, server.introspect(self.path.rsplit("/", 1)[1], form))
            else:
                self._answer(404, {})

    return Handler
