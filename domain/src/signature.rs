//! Webhook secrets and signatures.
//!
//! A webhook secret is a string `whsec_…`. New secrets are `whsec_` + the
//! standard base64 (with padding) of [`SECRET_RANDOM_BYTES`] random bytes, the
//! shape Svix and the Standard Webhooks libraries expect ([`new_secret`]).
//!
//! Two schemes are sent side by side:
//!
//! * `X-Webhook-Signature`: lowercase hex HMAC-SHA256 of the exact body, keyed
//!   with the UTF-8 bytes of the whole secret string, `whsec_` included (the
//!   original gateway's scheme).
//! * Standard Webhooks (<https://www.standardwebhooks.com>): headers
//!   `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64>`,
//!   where the signed content is `{msg_id}.{timestamp}.{body}` and the base64 is
//!   the standard alphabet with padding. The key is [`standard_webhooks_key`]:
//!   as in Svix and the official libraries, the base64-decoded part after
//!   `whsec_`. A secret whose tail is not strict standard base64 (a *legacy*
//!   secret such as the seeded dev secret `whsec_test_abc123`) cannot be read
//!   that way; its key is its UTF-8 bytes, and [`standard_webhooks_secret`]
//!   gives the `whsec_…` string that the official libraries decode back to
//!   those bytes. The API shows that string next to the secret, so the string
//!   a merchant gives an official library is always one the API showed.
//!
//! That rule lives only in [`standard_webhooks_key`]; signing, verifying and
//! [`standard_webhooks_secret`] all go through it.
//!
//! During a secret rotation both the new and the previous secret sign, so the
//! header carries two space-separated `v1,` signatures.

use std::borrow::Cow;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The prefix of every webhook secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// Random bytes in a new secret (256 bits, the HMAC-SHA256 block output size).
pub const SECRET_RANDOM_BYTES: usize = 32;

/// The Standard Webhooks signature version tag.
const VERSION_PREFIX: &str = "v1,";

/// A new secret from `random` (which the caller draws from a CSPRNG; the
/// domain has no randomness): `whsec_` + standard base64 of the bytes.
pub fn new_secret(random: &[u8; SECRET_RANDOM_BYTES]) -> String {
    format!("{SECRET_PREFIX}{}", BASE64.encode(random))
}

/// The key bytes of the Standard Webhooks scheme for `secret`: the decoded
/// tail when `secret` is `whsec_` + strict standard base64 (padding required,
/// canonical, non-empty), as the official libraries read it; otherwise (a
/// legacy secret) the UTF-8 bytes of the whole string.
pub fn standard_webhooks_key(secret: &str) -> Cow<'_, [u8]> {
    match decoded_tail(secret) {
        Some(key) => Cow::Owned(key),
        None => Cow::Borrowed(secret.as_bytes()),
    }
}

/// The `whsec_…` string to give the official Standard Webhooks libraries for
/// `secret`: the secret itself when its tail is base64, else
/// `"whsec_" + base64(secret's UTF-8 bytes)`. Either way the libraries derive
/// [`standard_webhooks_key`] from it.
pub fn standard_webhooks_secret(secret: &str) -> String {
    if decoded_tail(secret).is_some() {
        secret.to_owned()
    } else {
        format!("{SECRET_PREFIX}{}", BASE64.encode(secret.as_bytes()))
    }
}

/// The base64-decoded part after `whsec_`, when there is one.
fn decoded_tail(secret: &str) -> Option<Vec<u8>> {
    let tail = secret.strip_prefix(SECRET_PREFIX)?;
    BASE64.decode(tail).ok().filter(|key| !key.is_empty())
}

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

/// `X-Webhook-Signature`: lowercase hex HMAC-SHA256 of `body` keyed with the
/// UTF-8 bytes of the whole `secret` string.
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

/// `webhook-signature` header value: one `v1,<base64>` per secret, each keyed
/// with [`standard_webhooks_key`], space-separated (the current secret first,
/// then any previous one still inside its overlap window).
pub fn sign_standard(secrets: &[&str], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|secret| {
            let tag = standard_mac(&standard_webhooks_key(secret), msg_id, timestamp, body)
                .finalize()
                .into_bytes();
            format!("{VERSION_PREFIX}{}", BASE64.encode(tag))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// True when any `v1,` signature in `header` matches `secret` (keyed with
/// [`standard_webhooks_key`]). Each comparison is constant-time; unknown
/// versions and malformed entries are skipped. Timestamp tolerance is the
/// receiver's policy and is not checked here.
pub fn verify_standard(
    secret: &str,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
) -> bool {
    let key = standard_webhooks_key(secret);
    header
        .split(' ')
        .filter_map(|entry| entry.strip_prefix(VERSION_PREFIX))
        .filter_map(|encoded| BASE64.decode(encoded).ok())
        .any(|signature| {
            standard_mac(&key, msg_id, timestamp, body)
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
        // The example from the Standard Webhooks reference libraries: a
        // base64 secret, keyed with its decoded bytes.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let header = sign_standard(
            &[secret],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(header, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert_eq!(standard_webhooks_secret(secret), secret);
        assert!(verify_standard(
            secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
            &header
        ));
    }

    #[test]
    fn the_key_is_the_decoded_tail_of_a_base64_secret_else_the_utf8_bytes() {
        assert_eq!(&*standard_webhooks_key("whsec_YWJj"), b"abc");
        assert_eq!(&*standard_webhooks_key("whsec_YWI="), b"ab");
        // The generated secrets of earlier versions (32 alphanumerics) are
        // base64 too: the official libraries decode them the same way.
        assert_eq!(
            standard_webhooks_key("whsec_3kTq9ZrW0xYbN5mC8vLp2sHd7fJa4gE1").len(),
            24
        );
        for legacy in [
            SECRET,        // `_` is not in the standard alphabet
            "whsec_",      // nothing to decode
            "whsec_YWI",   // padding missing
            "whsec_YWJ=",  // not canonical (non-zero trailing bits)
            "whsec_a-b_",  // URL-safe alphabet
            "whsec_YW Jj", // whitespace
            "YWJj",        // no prefix
            "WHSEC_YWJj",  // the prefix is case-sensitive, as in the libraries
        ] {
            assert_eq!(
                &*standard_webhooks_key(legacy),
                legacy.as_bytes(),
                "{legacy:?}"
            );
            let shown = standard_webhooks_secret(legacy);
            assert_eq!(
                BASE64
                    .decode(shown.strip_prefix(SECRET_PREFIX).unwrap())
                    .unwrap(),
                legacy.as_bytes(),
                "{legacy:?}"
            );
            // What is shown for a legacy secret is itself a base64 secret
            // with the same key: giving it back changes nothing.
            assert_eq!(standard_webhooks_key(&shown), standard_webhooks_key(legacy));
            assert_eq!(standard_webhooks_secret(&shown), shown);
        }
    }

    #[test]
    fn new_secrets_are_base64_of_the_random_bytes() {
        let random = [7u8; SECRET_RANDOM_BYTES];
        let secret = new_secret(&random);
        assert_eq!(secret, format!("whsec_{}", BASE64.encode(random)));
        assert_eq!(secret.len(), SECRET_PREFIX.len() + 44);
        assert_eq!(&*standard_webhooks_key(&secret), random.as_slice());
        assert_eq!(standard_webhooks_secret(&secret), secret);
        // Both schemes still differ in their keys: hex uses the whole string.
        let body = b"{}";
        assert_eq!(sign_hex(&secret, body), {
            let mut mac = mac(secret.as_bytes());
            mac.update(body);
            hex::encode(mac.finalize().into_bytes())
        });
        let header = sign_standard(&[&secret], MSG_ID, TIMESTAMP, body);
        let tag = standard_mac(&random, MSG_ID, TIMESTAMP, body)
            .finalize()
            .into_bytes();
        assert_eq!(header, format!("v1,{}", BASE64.encode(tag)));
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
