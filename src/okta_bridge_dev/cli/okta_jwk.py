"""``okta-bridge okta-jwk`` (``make okta-jwk KEY=...``): the public JWK of a KMS signing key, ready
to paste into the Okta app (General > Client Credentials > Public keys > Add key), and the fields
the credentials secret then needs.

The JWK is ``okta_bridge.auth.jwk.public_jwk`` of ``kms:GetPublicKey``'s DER: its ``kid`` is
the key's RFC 7638 thumbprint, as in the template's ``KmsPublicJwk`` output and in a rotation. The
JWK goes to standard output alone (``> jwk.json`` keeps it clean), everything else to standard
error. Nothing is created. ``--local`` reads the local stack's KMS (``cli.local``).
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from okta_bridge_dev.cli.exit_codes import EXIT_OK
from okta_bridge_dev.console import Console
from okta_bridge_dev.release.errors import UsageError

__all__ = ["ALGORITHMS", "add_arguments", "cmd_okta_jwk", "print_jwk", "signing_jwk"]

ALGORITHMS = ("RS256", "ES256")
"""What the bridge signs with KMS: RS256 (RSA_2048 or larger) and ES256 (ECC_NIST_P256)."""
_ARN_REGION = re.compile(r"^arn:aws[a-z-]*:kms:([a-z0-9-]+):")
_NOT_SIGNING = frozenset({"UnsupportedOperationException", "InvalidKeyUsageException"})
"""GetPublicKey's refusals for a key without a public half (a symmetric or HMAC key)."""
_HINT = (
    "Add the JWK above to the Okta app (Applications > the app > General > Client Credentials > "
    "Public keys > Add key), then add these fields to the credentials secret:"
)


def add_arguments(sub: argparse.ArgumentParser) -> None:
    """``--key-id``, ``--region``, ``--profile``, ``--local``."""
    sub.add_argument(
        "--key-id",
        metavar="KEY",
        help="KMS key ARN, key id, alias/<name> or alias ARN (with --local: default the "
        "kms-rs256 app's key)",
    )
    sub.add_argument("--region", help="default: the ARN's region, else AWS_REGION or the profile's")
    sub.add_argument("--profile", help="AWS profile (default: AWS_PROFILE)")
    sub.add_argument("--local", action="store_true", help="the local stack's KMS (no AWS account)")
    sub.set_defaults(run=cmd_okta_jwk)


def cmd_okta_jwk(args: argparse.Namespace, console: Console) -> int:
    """Print the key's JWK (stdout) and the secret's fields (stderr)."""
    if args.local:
        from okta_bridge_dev.cli import local  # noqa: PLC0415 - the local stack, on demand

        return local.cmd_okta_jwk_local(args, console)
    if not args.key_id:
        raise UsageError("--key-id is required (a KMS key ARN, key id or alias/<name>)")
    import boto3  # noqa: PLC0415 - deferred: the other commands need not pay for it

    match = _ARN_REGION.match(args.key_id)
    region = args.region or (match.group(1) if match else None)
    session = boto3.session.Session(profile_name=args.profile, region_name=region)
    if not session.region_name:
        raise UsageError("no AWS region: pass --region, use a key ARN, or set AWS_REGION")
    kms = session.client("kms")
    try:
        print_jwk(signing_jwk(kms, args.key_id), console)
    finally:
        kms.close()
    return EXIT_OK


def signing_jwk(kms: Any, key_id: str) -> tuple[dict[str, str], str]:
    """(the JWK, the key's ARN) of an asymmetric signing key the bridge can sign with.

    UsageError for a key it cannot use (symmetric, ENCRYPT_DECRYPT, a curve or size Okta or the
    bridge refuses); KMS's other refusals (NotFoundException, AccessDeniedException...) are raised
    as boto3 raises them, for ``exit_codes.explain``.
    """
    from botocore.exceptions import ClientError  # noqa: PLC0415

    from okta_bridge.auth.jwk import public_jwk  # noqa: PLC0415 - cryptography, on demand

    try:
        found = kms.get_public_key(KeyId=key_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in _NOT_SIGNING:
            raise UsageError(f"{key_id} is not an asymmetric signing key ({code})") from None
        raise
    usage = found.get("KeyUsage")
    if usage != "SIGN_VERIFY":
        raise UsageError(f"{key_id} is a {usage} key: Okta needs a SIGN_VERIFY key")
    try:
        jwk = public_jwk(found["PublicKey"])
    except ValueError as exc:
        raise UsageError(f"{key_id}: {exc}") from None
    if jwk["alg"] not in ALGORITHMS:
        raise UsageError(
            f"{key_id} is a {found.get('KeySpec')} key ({jwk['alg']}): the bridge signs RS256 "
            "(RSA_2048 or larger) or ES256 (ECC_NIST_P256)"
        )
    return jwk, str(found.get("KeyId") or key_id)


def print_jwk(found: tuple[dict[str, str], str], console: Console) -> None:
    """The JWK on standard output; the hint and the secret's fields on standard error."""
    jwk, key_arn = found
    console.say(json.dumps(jwk, indent=2))
    fields = {"kms_key_id": key_arn, "key_id": jwk["kid"], "key_algorithm": jwk["alg"]}
    print(_HINT, file=console.err, flush=True)
    print(json.dumps(fields, indent=2), file=console.err, flush=True)
