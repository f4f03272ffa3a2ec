//! Webhook signatures.
//!
//! Two schemes are sent side by side:
//!
//! * `X-Webhook-Signature`: lowercase hex HMAC-SHA256 of the exact body, keyed
//!   with the UTF-8 bytes of the merchant's webhook secret string (the original
//!   gateway's scheme).
//! * Standard Webhooks (<https://www.standardwebhooks.com>): headers
//!   `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64>`,
//!   where the signed content is `{msg_id}.{timestamp}.{body}` and the base64 is
//!   the standard alphabet with padding. The key bytes are again the UTF-8 bytes
//!   of the secret string; [`standard_webhooks_secret`] gives the `whsec_…`
//!   string that the official verifier libraries decode back to those bytes.
//!
//! During a secret rotation both the new and the previous secret sign, so the
//! header carries two space-separated `v1,` signatures.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The Standard Webhooks signature version tag.
const VERSION_PREFIX: &str = "v1,";

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC is defined for keys of any length (long keys are hashed first), so
    // this never fails.
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC-SHA256 accepts keys of any length")
}

fn standard_mac(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = mac(key);
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// `X-Webhook-Signature`: lowercase hex HMAC-SHA256 of `body` keyed with `secret`.
pub fn sign_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = mac(secret.as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Checks an `X-Webhook-Signature` value in constant time. Hex of either case
/// is accepted; anything that is not 64 hex digits is false.
pub fn verify_hex(secret: &str, body: &[u8], signature: &str) -> bool {
    let Ok(expected) = hex::decode(signature.trim()) else {
        return false;
    };
    let mut mac = mac(secret.as_bytes());
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// The `whsec_…` form of `secret` for Standard Webhooks verifier libraries:
/// `"whsec_" + base64(secret's UTF-8 bytes)`.
pub fn standard_webhooks_secret(secret: &str) -> String {
    format!("whsec_{}", BASE64.encode(secret.as_bytes()))
}

/// `webhook-signature` header value: one `v1,<base64>` per secret, space-separated
/// (the current secret first, then any previous one still inside its overlap window).
pub fn sign_standard(secrets: &[&str], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|secret| {
            let tag = standard_mac(secret.as_bytes(), msg_id, timestamp, body)
                .finalize()
                .into_bytes();
            format!("{VERSION_PREFIX}{}", BASE64.encode(tag))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// True when any `v1,` signature in `header` matches `secret`. Each comparison
/// is constant-time; unknown versions and malformed entries are skipped.
/// Timestamp tolerance is the receiver's policy and is not checked here.
pub fn verify_standard(
    secret: &str,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
) -> bool {
    header
        .split(' ')
        .filter_map(|entry| entry.strip_prefix(VERSION_PREFIX))
        .filter_map(|encoded| BASE64.decode(encoded).ok())
        .any(|signature| {
            standard_mac(secret.as_bytes(), msg_id, timestamp, body)
                .verify_slice(&signature)
                .is_ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values computed independently with Python's hmac/hashlib/base64:
    //   hmac.new(b"whsec_test_abc123", BODY, hashlib.sha256).hexdigest()
    //   base64.b64encode(hmac.new(key, f"{MSG_ID}.{TS}.".encode() + BODY, hashlib.sha256).digest())
    const SECRET: &str = "whsec_test_abc123";
    const OLD_SECRET: &str = "whsec_old_secret";
    const BODY: &[u8] = br#"{"event":"payment.success","timestamp":1700000000,"data":{"payment":{"id":"pay_H8sK3jD9s2L1pQr5","amount":50000}}}"#;
    const MSG_ID: &str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";
    const TIMESTAMP: i64 = 1_674_087_231;
    const HEX: &str = "654d681fd1f4ff26b666f1ce65f5f18953b743ff1579b20733620dcfca1fdf30";
    const V1_CURRENT: &str = "v1,4GfimFB4Vd8NXcTPw6N1O+3PA4qhKgtOGYj9NN+hJzY=";
    const V1_OLD: &str = "v1,Qy+f8YNXuEdA7Ntq/0RXQH6oz9mZew/hbdVCBT+2Jqc=";

    #[test]
    fn hex_signature_matches_the_independent_vector() {
        assert_eq!(sign_hex(SECRET, BODY), HEX);
        assert!(verify_hex(SECRET, BODY, HEX));
        assert!(verify_hex(SECRET, BODY, &HEX.to_uppercase()));
        assert!(!verify_hex(SECRET, b"{}", HEX));
        assert!(!verify_hex("other", BODY, HEX));
        assert!(!verify_hex(SECRET, BODY, &HEX[..62]));
        assert!(!verify_hex(SECRET, BODY, "not hex"));
        assert!(!verify_hex(SECRET, BODY, ""));
    }

    #[test]
    fn standard_secret_is_base64_of_the_secret_bytes() {
        assert_eq!(
            standard_webhooks_secret(SECRET),
            "whsec_d2hzZWNfdGVzdF9hYmMxMjM="
        );
    }

    #[test]
    fn standard_signature_matches_the_independent_vector() {
        assert_eq!(
            sign_standard(&[SECRET], MSG_ID, TIMESTAMP, BODY),
            V1_CURRENT
        );
        assert_eq!(
            sign_standard(&[SECRET, OLD_SECRET], MSG_ID, TIMESTAMP, BODY),
            format!("{V1_CURRENT} {V1_OLD}")
        );
        assert_eq!(sign_standard(&[], MSG_ID, TIMESTAMP, BODY), "");
    }

    #[test]
    fn standard_webhooks_reference_vector() {
        // The example from the Standard Webhooks reference libraries; its key
        // is not UTF-8, so it goes through the byte-level helper.
        let key = BASE64.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let tag = standard_mac(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        )
        .finalize()
        .into_bytes();
        assert_eq!(
            BASE64.encode(tag),
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn verifies_any_matching_v1_signature() {
        let both = sign_standard(&[SECRET, OLD_SECRET], MSG_ID, TIMESTAMP, BODY);
        assert!(verify_standard(SECRET, MSG_ID, TIMESTAMP, BODY, &both));
        assert!(verify_standard(OLD_SECRET, MSG_ID, TIMESTAMP, BODY, &both));
        assert!(verify_standard(
            OLD_SECRET,
            MSG_ID,
            TIMESTAMP,
            BODY,
            &format!("v2,abc {V1_OLD}")
        ));
        assert!(!verify_standard("third", MSG_ID, TIMESTAMP, BODY, &both));
        assert!(!verify_standard(SECRET, MSG_ID, TIMESTAMP + 1, BODY, &both));
        assert!(!verify_standard(
            SECRET,
            "msg_other",
            TIMESTAMP,
            BODY,
            &both
        ));
        assert!(!verify_standard(SECRET, MSG_ID, TIMESTAMP, b"{}", &both));
        assert!(!verify_standard(SECRET, MSG_ID, TIMESTAMP, BODY, ""));
        assert!(!verify_standard(
            SECRET,
            MSG_ID,
            TIMESTAMP,
            BODY,
            "v1,!!!notbase64"
        ));
        assert!(!verify_standard(
            SECRET,
            MSG_ID,
            TIMESTAMP,
            BODY,
            &V1_CURRENT.replace("v1,", "v2,")
        ));
    }
}
