"""X-PagerDuty-Signature: HMAC-SHA256 of the raw body, `v1=<hex>` values, any one match is enough."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from postmortem.webhooks.errors import WebhookRejected
from postmortem.webhooks.pagerduty_signature import sign, verify_signature
from tests.fixtures import fixture_bytes

BODY = fixture_bytes("pagerduty_v3_incident_resolved.json")
SECRET = "whsec-current-4f1d2c"
OLD_SECRET = "whsec-old-9a8b7c"


def hexsig(body: bytes, secret: str) -> str:
    """Computed here, independently of the module under test."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def status_of(body: bytes, header: str | None, secrets) -> int:
    with pytest.raises(WebhookRejected) as info:
        verify_signature(body, header, secrets)
    return info.value.status_code


def test_sign_matches_an_independent_hmac():
    assert sign(BODY, SECRET) == "v1=" + hexsig(BODY, SECRET)
    # A known vector: HMAC-SHA256(key="key", "The quick brown fox jumps over the lazy dog").
    assert sign(b"The quick brown fox jumps over the lazy dog", "key") == (
        "v1=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    )


def test_valid_signature_passes():
    verify_signature(BODY, f"v1={hexsig(BODY, SECRET)}", [SECRET])  # raises WebhookRejected when wrong


def test_non_ascii_secret_is_utf8_encoded():
    secret = "sécret-密钥"
    verify_signature(BODY, f"v1={hexsig(BODY, secret)}", [secret])


@pytest.mark.parametrize(
    "header",
    [
        "v1={other},v1={good}",
        "v1={good},v1={other}",
        "v1={other}, v1={good}",
        " v1={good} ",
    ],
)
def test_any_one_of_several_values_is_enough(header):
    good, other = hexsig(BODY, SECRET), hexsig(BODY, "some-unrelated-secret")
    verify_signature(BODY, header.format(good=good, other=other), [SECRET])


def test_rotation_two_secrets_body_signed_by_the_second():
    header = f"v1={hexsig(BODY, 'yet-another')},v1={hexsig(BODY, SECRET)}"
    verify_signature(BODY, header, [OLD_SECRET, SECRET])
    verify_signature(BODY, f"v1={hexsig(BODY, SECRET)}", (OLD_SECRET, SECRET))
    # Either secret alone is not enough for the other's signature.
    assert status_of(BODY, f"v1={hexsig(BODY, SECRET)}", [OLD_SECRET]) == 401


def test_unknown_versions_are_ignored():
    good = hexsig(BODY, SECRET)
    verify_signature(BODY, f"v0=deadbeef,v1={good},v2=whatever", [SECRET])
    # A correct digest under an unknown version does not count.
    assert status_of(BODY, f"v0={good}", [SECRET]) == 400
    assert status_of(BODY, f"v2={good},v0={good}", [SECRET]) == 400


@pytest.mark.parametrize("header", [None, "", "   "])
def test_missing_header_is_400(header):
    assert status_of(BODY, header, [SECRET]) == 400


@pytest.mark.parametrize("header", ["garbage", "sha256=abcdef", "V1 abcdef", "v1=", "v1"])
def test_header_without_a_v1_value_is_400(header):
    assert status_of(BODY, header, [SECRET]) == 400


def test_empty_body_is_400():
    assert status_of(b"", f"v1={hexsig(b'', SECRET)}", [SECRET]) == 400


def test_wrong_signature_is_401():
    assert status_of(BODY, f"v1={hexsig(BODY, 'wrong-secret')}", [SECRET]) == 401
    assert status_of(BODY, "v1=" + "0" * 64, [SECRET]) == 401


def test_truncated_signature_is_401():
    assert status_of(BODY, f"v1={hexsig(BODY, SECRET)[:-2]}", [SECRET]) == 401


@pytest.mark.parametrize("position", [0, len(BODY) // 2, len(BODY) - 1])
def test_body_modified_by_one_byte_is_401(position):
    header = f"v1={hexsig(BODY, SECRET)}"
    tampered = BODY[:position] + bytes([BODY[position] ^ 0x01]) + BODY[position + 1 :]
    assert len(tampered) == len(BODY) and tampered != BODY
    assert status_of(tampered, header, [SECRET]) == 401


def test_body_with_an_extra_byte_is_401():
    assert status_of(BODY + b"\n", f"v1={hexsig(BODY, SECRET)}", [SECRET]) == 401


@pytest.mark.parametrize("secrets", [[], ()])
def test_no_secrets_configured_is_503(secrets):
    assert status_of(BODY, f"v1={hexsig(BODY, SECRET)}", secrets) == 503


def test_uppercase_hex_is_accepted():
    verify_signature(BODY, f"v1={hexsig(BODY, SECRET).upper()}", [SECRET])


@pytest.mark.parametrize(
    "header",
    [
        "v1=ü" + "é" * 63,
        "v1=中文签名",
        "v1=\udcff\udcfe",
        "v1=\x00\x01\x02",
        "\x00\x01\x02",
        "é=é,ü",
        "v1=" + "\u2028" * 64,
        "v1=🙂," * 50,
        "ÿ" * 10_000,
    ],
)
def test_non_ascii_garbage_in_header_only_raises_webhook_rejected(header):
    # pytest.raises(WebhookRejected) lets any other exception type fail the test.
    assert status_of(BODY, header, [SECRET]) in (400, 401)
