//! Independent checks of a received webhook's signatures: the official
//! Standard Webhooks libraries (Python package and Rust crate
//! `standardwebhooks`) and Python's `hmac` for `X-Webhook-Signature`. Each
//! takes the strings a merchant would give it, nothing of ours.

use std::io::Write;
use std::process::{Command, Stdio};

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use super::receiver::Received;

/// Installs the Python `standardwebhooks` package on first use (`deploy/dev`
/// installs it too).
fn ensure_python_package() {
    let import = Command::new("python3")
        .args(["-c", "import standardwebhooks"])
        .status()
        .expect("python3 is needed for the independent Standard Webhooks check");
    if !import.success() {
        let pip = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "standardwebhooks"])
            .status()
            .expect("pip is needed to install the standardwebhooks package");
        assert!(
            pip.success(),
            "could not install the Python standardwebhooks package with pip"
        );
    }
}

/// Runs `script` with `args`, the body on stdin; true when it printed
/// `verified` and exited 0.
fn python(script: &str, args: &[&str], body: &[u8]) -> bool {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let output = child.wait_with_output().unwrap();
    output.status.success() && String::from_utf8_lossy(&output.stdout).contains("verified")
}

/// Verifies a received webhook with the official Python `standardwebhooks`
/// package, given `library_secret` exactly as a merchant would pass it to
/// `Webhook(...)`.
pub fn python_verifies(library_secret: &str, received: &Received) -> bool {
    ensure_python_package();
    let headers = serde_json::json!({
        "webhook-id": received.header("webhook-id"),
        "webhook-timestamp": received.header("webhook-timestamp"),
        "webhook-signature": received.header("webhook-signature"),
    });
    let script = "import sys, json\n\
from standardwebhooks.webhooks import Webhook\n\
body = sys.stdin.buffer.read()\n\
Webhook(sys.argv[1]).verify(body, json.loads(sys.argv[2]))\n\
print('verified')\n";
    python(
        script,
        &[library_secret, &headers.to_string()],
        &received.body,
    )
}

/// Verifies a received webhook with the official Rust crate
/// `standardwebhooks`, given `library_secret` as a merchant would pass it to
/// `Webhook::new`.
pub fn rust_verifies(library_secret: &str, received: &Received) -> bool {
    let Ok(webhook) = standardwebhooks::Webhook::new(library_secret) else {
        return false;
    };
    let mut headers = HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(received.header(name)).expect("header value"),
        );
    }
    webhook.verify(&received.body, &headers).is_ok()
}

/// Checks `X-Webhook-Signature` with Python's `hmac`: hex HMAC-SHA256 of the
/// body keyed with the UTF-8 bytes of `secret`, the whole string.
pub fn python_verifies_hex(secret: &str, received: &Received) -> bool {
    let script = "import sys, hmac, hashlib\n\
body = sys.stdin.buffer.read()\n\
expected = hmac.new(sys.argv[1].encode('utf-8'), body, hashlib.sha256).hexdigest()\n\
if hmac.compare_digest(expected, sys.argv[2]):\n    print('verified')\n";
    python(
        script,
        &[secret, received.header("x-webhook-signature")],
        &received.body,
    )
}
