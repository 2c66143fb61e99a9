"""The one error tree of okta-bridge.

Every failure the caller can see is a ``BridgeError`` with a stable ``code`` (what went wrong), a
``stage`` (which hop), an HTTP ``status`` and an operator ``hint``. Foreign exceptions (botocore,
urllib3, ssl, json) are translated at the edge with ``raise ... from exc``; messages never carry
secret material, so they are safe to log and to return.

    BridgeError
    ├── ConfigError            stage=config     500
    ├── RequestError           stage=request    400/403/405
    ├── SecretError            stage=secret     500/502/503
    ├── TokenError             stage=token      502/503/504
    ├── SigningError           stage=signing    500/502/503/504
    ├── NetworkError           stage=network    502/504
    ├── TlsError               stage=tls        502
    ├── UpstreamError          stage=upstream   4xx/502/504
    ├── DeliveryError          stage=delivery   500/502/504
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple


class Entry(NamedTuple):
    status: int
    hint: str


# Every code the bridge can answer, with the HTTP status the caller sees and what an operator should
# check first. Codes are a stable contract: add, never rename.
CATALOG: dict[str, Entry] = {
    "CONFIG_INVALID": Entry(500, "Fix the named environment variable or secret key and redeploy."),
    "BAD_REQUEST": Entry(400, "Send a string path starting with '/' and a flat string query."),
    "PATH_NOT_ALLOWED": Entry(
        403, "Use a path matching BRIDGE_ALLOWED_PATHS, or extend that list."
    ),
    "METHOD_NOT_ALLOWED": Entry(
        405,
        "Use a method BRIDGE_ALLOWED_ROUTES lists for this path (BRIDGE_ALLOWED_PATHS allows "
        "GET only), or add a route such as 'POST /v1/search'.",
    ),
    "REQUEST_TOO_LARGE": Entry(
        413, "Send a smaller JSON body, or raise BRIDGE_MAX_REQUEST_BYTES (at most 5 MB)."
    ),
    "QUERY_NOT_ALLOWED": Entry(
        403,
        "Leave out query parameters the configured endpoint sets; use only the names in "
        "BRIDGE_ALLOWED_QUERY (or extend that list).",
    ),
    "CALLER_NOT_AUTHENTICATED": Entry(
        403,
        "Put AWS_IAM auth (or an authorizer) on the Function URL or API Gateway route in front "
        "of the bridge; BRIDGE_ALLOW_ANONYMOUS_PROXY=on only for a deliberately open door.",
    ),
    "CALLER_NOT_ALLOWED": Entry(
        403, "Add a BRIDGE_CALLER_ROUTES rule naming this caller's IAM role (or authorizer)."
    ),
    "DIAGNOSE_DISABLED": Entry(
        403,
        "Diagnose is switched off (BRIDGE_DIAGNOSE=off, the template's Diagnose): switch it on "
        "for the investigation, or read the logs and metrics instead.",
    ),
    "SECRET_NOT_FOUND": Entry(500, "Check BRIDGE_SECRET_ID and the function's region."),
    "SECRET_ACCESS_DENIED": Entry(
        500, "Grant secretsmanager:GetSecretValue on this secret to the function's role."
    ),
    "SECRET_DECRYPT_FAILED": Entry(
        500, "Allow kms:Decrypt on the secret's KMS key (via Secrets Manager) for the role."
    ),
    "SECRET_THROTTLED": Entry(503, "Secrets Manager throttled the read; it is retried next call."),
    "SECRET_UNREACHABLE": Entry(
        502, "Give the function a route to Secrets Manager: a VPC endpoint or a NAT gateway."
    ),
    "SECRET_INVALID": Entry(500, "Store the secret as JSON with the keys the guide lists."),
    "SECRET_ERROR": Entry(502, "Secrets Manager failed; check its status and the logs."),
    "TOKEN_REJECTED": Entry(
        502,
        "Okta refused the client credentials (invalid_client): check the client id, "
        "secret or key, and the app's client authentication method.",
    ),
    "TOKEN_SCOPE_INVALID": Entry(
        502, "Grant the scope on the authorization server and allow it in the access policy rule."
    ),
    "TOKEN_ACCESS_DENIED": Entry(
        502, "Add an access policy rule on the authorization server that admits this client."
    ),
    "TOKEN_GRANT_INVALID": Entry(
        502, "Okta refused the service account's username or password (invalid_grant)."
    ),
    "TOKEN_MFA_REQUIRED": Entry(
        502, "Give the service account a password-only sign-on policy; the bridge cannot do MFA."
    ),
    "TOKEN_RATE_LIMITED": Entry(
        503, "Okta's rate limit was hit; raise the app's rate-limit share or reduce cold starts."
    ),
    "TOKEN_BUDGET_EXHAUSTED": Entry(
        503,
        "This environment sent BRIDGE_TOKEN_BUDGET_PER_MINUTE token requests in a minute: find "
        "what keeps failing (the log's earlier token errors, the API's 401s) before raising it.",
    ),
    "TOKEN_ENDPOINT_ERROR": Entry(502, "Okta's token endpoint failed; check status.okta.com."),
    "TOKEN_DPOP_REQUIRED": Entry(
        502,
        "The Okta app requires DPoP and no proof was sent: set BRIDGE_DPOP to auto or on (the "
        "template's Dpop), or \"dpop\": true in the secret. Never switch the app's DPoP off.",
    ),
    "TOKEN_DPOP_REJECTED": Entry(
        502,
        "Okta refused the DPoP proof: check the function's clock (iat), that the token URL is "
        "the one Okta serves (htu; no proxy rewriting it), and Okta's error description.",
    ),
    "TOKEN_DPOP_NONCE_LOOP": Entry(
        502,
        "Okta asked for a DPoP nonce again after the proof carried the one it gave: check for "
        "a proxy or load balancer that strips or caches the DPoP-Nonce header.",
    ),
    "TOKEN_INVALID_RESPONSE": Entry(
        502, "Okta's answer was not a Bearer or DPoP token response; check the token URL."
    ),
    "TOKEN_UNREACHABLE": Entry(
        502, "Check DNS, the security group, the proxy and the firewall towards the token host."
    ),
    "TOKEN_TIMEOUT": Entry(504, "The token host did not answer in time; check the route and NAT."),
    # private_key_jwt assertions signed in AWS KMS (the secret's kms_key_id): one kms:Sign per
    # token request.
    "KMS_ACCESS_DENIED": Entry(
        500,
        "Allow kms:Sign on the secret's kms_key_id to the function's role, in the key policy "
        "(the template's KmsSigningKey does) with kms:SigningAlgorithm matching key_algorithm.",
    ),
    "KMS_KEY_DISABLED": Entry(
        500,
        "The signing key is disabled or pending deletion: point kms_key_id at the current key "
        "(a rotation's AWSCURRENT), or enable the key / cancel its deletion.",
    ),
    "KMS_KEY_NOT_FOUND": Entry(
        500, "Check kms_key_id: a key ARN or alias that exists in the function's account/region."
    ),
    "KMS_KEY_INVALID": Entry(
        500,
        "The key must be an asymmetric SIGN_VERIFY key matching the secret's key_algorithm: "
        "RSA_2048 (or larger) for RS256, ECC_NIST_P256 for ES256.",
    ),
    "KMS_THROTTLED": Entry(
        503,
        "KMS throttled kms:Sign: fewer token requests (cold starts, BRIDGE_TOKEN_BUDGET_PER_"
        "MINUTE), or raise the account's KMS cryptographic request quota.",
    ),
    "KMS_UNREACHABLE": Entry(
        502,
        "Give the function a route to KMS: an interface VPC endpoint com.amazonaws.<region>.kms "
        "(private DNS) or a NAT gateway.",
    ),
    "KMS_TIMEOUT": Entry(504, "KMS did not answer in time; check the KMS VPC endpoint or NAT."),
    "KMS_ERROR": Entry(502, "KMS failed to sign; the log names its error type. Retry later."),
    # Diagnose names the hop more finely than a normal invocation can.
    "DNS_UNRESOLVED": Entry(
        502,
        "The name does not resolve inside the VPC: add a Route 53 Resolver rule (or a private "
        "hosted zone) for the corporate domain, or check the spelling.",
    ),
    "TCP_REFUSED": Entry(
        502, "Something answered but refused the port: check the host's port and its firewall."
    ),
    "TCP_TIMEOUT": Entry(
        504,
        "No answer on the port: check the security group's egress, the route tables, the "
        "corporate firewall and NACLs towards the host.",
    ),
    "UPSTREAM_UNREACHABLE": Entry(
        502, "Check DNS, routes, the security group and the firewall towards the API host."
    ),
    "UPSTREAM_TIMEOUT": Entry(
        504, "The API did not answer within the deadline; check its health or raise the timeout."
    ),
    "TLS_UNTRUSTED": Entry(
        502, "Put the enterprise root CA in the PEM file named by BRIDGE_CA_BUNDLE."
    ),
    "TLS_HOSTNAME_MISMATCH": Entry(
        502, "Use the host name the certificate was issued for, or reissue the certificate."
    ),
    "TLS_CERT_EXPIRED": Entry(502, "The server's certificate has expired: renew it."),
    "TLS_PIN_MISMATCH": Entry(
        502, "The API's key changed: if the change is planned, add its pin to BRIDGE_API_PINS."
    ),
    "TLS_HANDSHAKE_FAILED": Entry(
        502,
        "The TLS handshake failed: check the protocol version (1.2+), whether the server "
        "requires a client certificate (client_certificate in the secret), and any proxy.",
    ),
    "UPSTREAM_UNAUTHORIZED": Entry(
        502, "The API refused a fresh token: check its expected issuer, audience and scope."
    ),
    "UPSTREAM_FORBIDDEN": Entry(403, "The API denied the request for this client."),
    "UPSTREAM_DPOP_UNSUPPORTED": Entry(
        502,
        "The API refused the DPoP-bound token: its gateway knows only Bearer. Have it validate "
        "DPoP (guide 2.9); the bridge never downgrades a bound token to Bearer.",
    ),
    "UPSTREAM_DPOP_REJECTED": Entry(
        502,
        "The API refused the DPoP proof: check that its gateway computes htu from the URL the "
        "bridge calls (no path rewriting in between), and the clocks (iat).",
    ),
    "UPSTREAM_NOT_FOUND": Entry(404, "The API has no such resource."),
    "UPSTREAM_CLIENT_ERROR": Entry(502, "The API refused the request; see the upstream status."),
    "UPSTREAM_RATE_LIMITED": Entry(503, "The API is rate limiting the bridge; retry later."),
    "UPSTREAM_ERROR": Entry(502, "The API failed; check its health."),
    "UPSTREAM_NOT_JSON": Entry(502, "The API's answer was not JSON in UTF-8."),
    "UPSTREAM_TOO_LARGE": Entry(
        502, "The answer is over BRIDGE_MAX_RESPONSE_BYTES; ask for smaller pages."
    ),
    "UPSTREAM_REDIRECT": Entry(
        502,
        "The API redirected to another host, to a path the allow-list refuses, to a non-HTTPS "
        "URL, or too often: call the final URL's path directly (and allow it), or fix the API.",
    ),
    "UPSTREAM_PAGINATION": Entry(
        502,
        "Pagination stopped on the API's next link: a page already read (a loop), another "
        "origin, or a path the allow-list refuses (fix the API's links, or BRIDGE_NEXT_LINK / "
        "next_pointer that reads them); for the library, more pages than max_pages too.",
    ),
    "INTERNAL_ERROR": Entry(500, "Report it with the request id."),
    # Large answers written to S3 (BRIDGE_DELIVERY_BUCKET) instead of returned inline.
    "DELIVERY_NOT_CONFIGURED": Entry(
        400,
        'The event asked for "deliver": "s3" and no BRIDGE_DELIVERY_BUCKET is set: deploy '
        "the template's delivery bucket (or set the variable), or leave deliver out.",
    ),
    "DELIVERY_DENIED": Entry(
        500,
        "S3 or KMS refused the write: the role needs s3:PutObject and s3:AbortMultipartUpload "
        "under BRIDGE_DELIVERY_PREFIX and kms:GenerateDataKey/kms:Decrypt on the bucket's key.",
    ),
    "DELIVERY_UNREACHABLE": Entry(
        502, "Give the function a route to S3: an S3 gateway VPC endpoint or a NAT gateway."
    ),
    "DELIVERY_TIMEOUT": Entry(
        504, "The S3 upload did not finish in time: raise the function's timeout or its memory."
    ),
    "DELIVERY_TOO_LARGE": Entry(
        502, "The answer is over BRIDGE_MAX_DELIVERY_BYTES: narrow the export, or raise it."
    ),
    "DELIVERY_FAILED": Entry(502, "S3 refused the upload; the log names its error code."),
    # The shared token cache's failures: logged and counted (SharedCacheFallbacks), never answered,
    # as the environment then mints a token for itself.
    "TOKEN_CACHE_UNREACHABLE": Entry(
        502,
        "Give the function a route to DynamoDB and KMS (in a VPC: the DynamoDB gateway endpoint "
        "and the KMS endpoint the template creates).",
    ),
    "TOKEN_CACHE_TIMEOUT": Entry(
        504, "DynamoDB or KMS did not answer in time; check the endpoints and AWS's health."
    ),
    "TOKEN_CACHE_REFUSED": Entry(
        502,
        "DynamoDB or KMS refused the cache's call; the log names the AWS error (table deleted, "
        "key disabled, role or key policy changed, throttling).",
    ),
    "TOKEN_CACHE_CORRUPT": Entry(
        502,
        "A cached item did not open with the stack's key (tampered, or written by another "
        "stack); it is ignored and replaced by the next mint.",
    ),
    # The rotation function's failures. Secrets Manager retries the whole rotation; the codes tell
    # the operator (alarm, log) what to fix before the next attempt.
    "ROTATION_NOT_ENABLED": Entry(
        500, "Turn rotation on for the secret (the template's RotationSchedule) before rotating."
    ),
    "ROTATION_SECRET_MISMATCH": Entry(
        500, "This function rotates only BRIDGE_SECRET_ID; point the other secret elsewhere."
    ),
    "ROTATION_VERSION_UNKNOWN": Entry(
        500, "The ClientRequestToken is no version of the secret; start a new rotation."
    ),
    "ROTATION_VERSION_NOT_PENDING": Entry(
        500, "The version is not staged AWSPENDING; start a new rotation (make rotate-now)."
    ),
    "ROTATION_STEP_INVALID": Entry(
        500, "Step must be createSecret, setSecret, testSecret or finishSecret."
    ),
    "ROTATION_ADMIN_SECRET_INVALID": Entry(
        500,
        "Store the admin app's org_url, client_id, private_key and key_id in the admin secret "
        "(make secret ADMIN=1).",
    ),
    "ROTATION_ADMIN_TOKEN_FAILED": Entry(
        502,
        "Okta refused the admin app: check its public key, the granted okta.* scopes, and the "
        "org's 'DPoP support on Okta management APIs' feature when the app requires DPoP.",
    ),
    "ROTATION_OKTA_FORBIDDEN": Entry(
        502,
        "Grant the admin app the okta.* scope named and an admin role over the bridge app (or "
        "the service account).",
    ),
    "ROTATION_OKTA_ERROR": Entry(
        502, "Okta's Management API refused the change; its errorCode and errorSummary say why."
    ),
    "ROTATION_OKTA_UNREACHABLE": Entry(
        502, "Give the rotation function a route to the Okta org (NAT, proxy, firewall, DNS)."
    ),
    "ROTATION_OKTA_TIMEOUT": Entry(
        504, "Okta did not answer in time; check the route, then run make rotate-now again."
    ),
    "ROTATION_SECRET_LIMIT": Entry(
        500,
        "The app already has two active client secrets: delete the unused one in the Okta "
        "console, or put its id in the secret as okta_secret_id.",
    ),
    "ROTATION_TEST_FAILED": Entry(
        502,
        "The new credential got no token, so it was not promoted: check the app's policy and "
        "the log's Okta error. A client secret or key: AWSCURRENT still works; rotate again. A "
        "password: once setSecret ran, Okta holds the new one (AWSPENDING, which the bridge "
        "falls back to): fix the cause and let this rotation be retried, not a new one.",
    ),
    "ROTATION_CREDENTIAL_UNIDENTIFIED": Entry(
        500,
        "finishSecret cannot tell which Okta credential the new version holds, so it retired "
        "nothing: check the version's okta_secret_id (or key) against the app in Okta.",
    ),
    "ROTATION_PASSWORD_DIRECTORY_MASTERED": Entry(
        500,
        "The directory (AD/LDAP) masters this password: change it there and store it with make "
        "secret (see the guide).",
    ),
    "ROTATION_KMS_DENIED": Entry(
        500,
        "Allow the rotation role kms:CreateKey and kms:TagResource (with the okta-bridge tags) "
        "and, in each signing key's policy, key management (the template grants both).",
    ),
    "ROTATION_KMS_ERROR": Entry(
        502, "KMS refused a key operation during rotation; the log names its error type."
    ),
    "ROTATION_OLD_CREDENTIAL_ACCEPTED": Entry(
        502,
        "Okta still accepts the old credential: deactivate and delete it in the Okta console now.",
    ),
}


class BridgeError(Exception):
    """Base of every error the bridge reports; its text is safe to log and to return."""

    stage: ClassVar[str] = "internal"

    def __init__(self, code: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        entry = CATALOG[code]
        self.code = code
        self.message = message
        self.status = entry.status
        self.hint = entry.hint
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"{self.code} ({self.stage}): {self.message}"


class ConfigError(BridgeError):
    """The function's environment is wrong: an operator must fix the deployment."""

    stage = "config"

    def __init__(self, variable: str, message: str) -> None:
        super().__init__("CONFIG_INVALID", f"{variable}: {message}")
        self.variable = variable


class RequestError(BridgeError):
    """The caller's event is malformed or asks for something the policy refuses."""

    stage = "request"


class SecretError(BridgeError):
    """Reading or parsing the credentials secret failed."""

    stage = "secret"


class TokenError(BridgeError):
    """Okta did not issue a usable access token."""

    stage = "token"


class SigningError(BridgeError):
    """AWS KMS refused or failed to sign a client assertion (the secret's ``kms_key_id``)."""

    stage = "signing"

    # The key the secret names can no longer sign at all (a rotation disabled or deleted it).
    KEY_UNUSABLE: ClassVar[frozenset[str]] = frozenset({"KMS_KEY_DISABLED", "KMS_KEY_NOT_FOUND"})


class NetworkError(BridgeError):
    """A host could not be reached: DNS, TCP, proxy, or no answer before the deadline."""

    stage = "network"


class TlsError(BridgeError):
    """The TLS handshake failed: untrusted chain, hostname mismatch, expired certificate."""

    stage = "tls"


class UpstreamError(BridgeError):
    """The internal API answered, but not with usable JSON."""

    stage = "upstream"


class RotationError(BridgeError):
    """Rotating the credentials failed; raised to Secrets Manager, which retries the rotation."""

    stage = "rotation"


class InternalError(BridgeError):
    """A bug: the caller gets no details; the log gets the exception type."""

    stage = "internal"

    def __init__(self) -> None:
        super().__init__("INTERNAL_ERROR", "Unexpected internal error; see the function's logs.")


class DeliveryError(BridgeError):
    """Writing a large answer to S3 failed (``BRIDGE_DELIVERY_BUCKET``)."""

    stage = "delivery"


class CacheError(BridgeError):
    """The shared token cache (DynamoDB, KMS) failed; the environment mints for itself."""

    stage = "token_cache"

    def __init__(self, code: str, message: str, *, aws_code: str | None = None) -> None:
        super().__init__(code, message)
        self.aws_code = aws_code
