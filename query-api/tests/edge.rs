//! The edge router (`deploy/nginx/paystream.conf.template`) in front of the
//! real command-api and query-api, both over one fresh database: reads go to
//! query-api, writes to command-api, and everything nginx answers itself is
//! JSON in the contract's error shape.
//!
//! Needs nginx at /usr/sbin/nginx (`deploy/dev test` and `deploy/dev up`
//! install it), PostgreSQL (`PAYSTREAM_TEST_DATABASE_URL`) and NATS
//! (`PAYSTREAM_TEST_NATS_URL`).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use paystream_domain::dev as seed;
use paystream_store::testing::{nats_url, unique_name, TestDatabase};
use serde_json::{json, Value};

const NGINX: &str = "/usr/sbin/nginx";
/// The nginx template of this checkout (the manifest directory is read at
/// run time, so a binary shared through a target directory reads its own).
fn template_path() -> String {
    let manifest =
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
    format!("{manifest}/../deploy/nginx/paystream.conf.template")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_sends_reads_to_query_api_and_writes_to_command_api() {
    let nginx = nginx_binary();
    let database_url = TestDatabase::create().await.url;
    let events_stream = unique_name("t").to_uppercase();
    let command_api = spawn_command_api(&database_url, &events_stream).await;
    let query_api = spawn_query_api(&database_url, &events_stream).await;
    let edge = Edge::start(&nginx, command_api.port(), query_api.port());
    edge.wait_until_serving().await;
    let command = Some(command_api.port());
    let query = Some(query_api.port());
    let command_api_url = format!("http://{command_api}");

    // A write: POST goes to command-api.
    let created = edge
        .send(
            "POST",
            "/api/v1/orders",
            Some(json!({"amount": 50000, "receipt": "edge-1"})),
        )
        .await;
    assert_eq!(created.status, 201, "create the order: {created:?}");
    assert_eq!(created.upstream, command, "who created it: {created:?}");
    let id = created.body["id"].as_str().expect("order id").to_owned();
    assert!(id.starts_with("order_"), "{id}");

    // A read of the same object: GET goes to query-api (read your writes).
    let read = edge
        .send("GET", &format!("/api/v1/orders/{id}"), None)
        .await;
    assert_eq!(read.status, 200, "read the order back: {read:?}");
    assert_eq!(read.upstream, query, "who answered the read: {read:?}");
    assert_eq!(read.body["id"], id.as_str());
    assert_eq!(read.body["amount"], 50000);
    assert_eq!(read.body["status"], "created");

    // HEAD is a read too.
    let head = edge
        .send("HEAD", &format!("/api/v1/orders/{id}"), None)
        .await;
    assert_eq!(head.upstream, query, "who answered HEAD: {head:?}");
    assert_eq!(head.status, 200, "{head:?}");

    // /health is query-api's.
    let health = edge.send("GET", "/health", None).await;
    assert_eq!(health.status, 200, "{health:?}");
    assert_eq!(health.upstream, query, "{health:?}");
    assert_eq!(health.body["service"], "query-api", "{health:?}");

    // Any other method on a query path reaches command-api, which has no such
    // route; a body above the API's 64 KiB reaches it too (nginx allows
    // 16 MiB). Each time the API's own JSON error comes back untouched:
    // exactly what command-api answers without the edge.
    let oversized = json!({"amount": 50000, "notes": {"filler": "x".repeat(100 * 1024)}});
    let cases = [
        ("PUT", format!("/api/v1/orders/{id}"), Some(json!({})), 404),
        ("DELETE", format!("/api/v1/orders/{id}"), None, 404),
        ("PATCH", "/api/v1/orders".to_owned(), Some(json!({})), 405),
        ("POST", "/api/v1/orders".to_owned(), Some(oversized), 413),
    ];
    for (method, path, body, status) in cases {
        let through_edge = edge.send(method, &path, body.clone()).await;
        assert_eq!(
            through_edge.upstream, command,
            "{method} {path}: {through_edge:?}"
        );
        assert_eq!(
            through_edge.status, status,
            "{method} {path}: {through_edge:?}"
        );
        assert_contract_error(&through_edge);
        let direct = call(
            &edge.client,
            &command_api_url,
            method,
            &path,
            body,
            "direct",
        )
        .await;
        assert_eq!(
            (through_edge.status, &through_edge.body),
            (direct.status, &direct.body),
            "{method} {path}: the edge changed command-api's answer"
        );
    }

    // Paths nobody serves: nginx answers 404 in the contract's JSON.
    for path in ["/nope", "/api/v1x", "/api"] {
        let unknown = edge.send("GET", path, None).await;
        assert_eq!(unknown.status, 404, "{path}: {unknown:?}");
        assert_eq!(
            unknown.upstream, None,
            "{path} must not be proxied: {unknown:?}"
        );
        assert_eq!(unknown.body["error"]["code"], "NOT_FOUND_ERROR", "{path}");
        assert_contract_error(&unknown);
    }

    // The web bundles are not built here: 404 JSON, even for a `.js` path.
    for path in ["/checkout.js", "/checkout", "/dashboard"] {
        let bundle = edge.send("GET", path, None).await;
        assert_eq!(bundle.status, 404, "{path}: {bundle:?}");
        assert_eq!(bundle.upstream, None, "{path}: {bundle:?}");
        assert_eq!(bundle.body["error"]["code"], "NOT_FOUND_ERROR", "{path}");
        assert_contract_error(&bundle);
    }
}

/// One request with the dev merchant's credentials; the body must be JSON
/// (or empty). `upstream` is left `None`.
async fn call(
    client: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
    request_id: &str,
) -> Reply {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = client
        .request(method, format!("{base}{path}"))
        .header("X-Api-Key", seed::DEV_API_KEY)
        .header("X-Api-Secret", seed::DEV_API_SECRET)
        .header("X-Request-Id", request_id);
    if let Some(body) = body {
        request = request
            .header("Content-Type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.expect("send the request");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = response.bytes().await.expect("response body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{base}{path}: not JSON ({status}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    Reply {
        status,
        content_type,
        body,
        upstream: None,
    }
}

/// The contract's error shape, served as JSON.
#[track_caller]
fn assert_contract_error(reply: &Reply) {
    assert!(
        reply.content_type.starts_with("application/json"),
        "content type of {reply:?}"
    );
    let error = &reply.body["error"];
    assert!(error["code"].is_string(), "error.code in {reply:?}");
    assert!(
        error["description"].is_string(),
        "error.description in {reply:?}"
    );
}

// ------------------------------------------------------------------ the edge

/// nginx run from the template in a folder of its own, stopped on drop.
#[derive(Debug)]
struct Edge {
    nginx: PathBuf,
    prefix: PathBuf,
    port: u16,
    child: Option<Child>,
    client: reqwest::Client,
}

/// One answer through the edge, and which upstream port served it (from the
/// access log; `None` when nginx answered itself).
#[derive(Debug)]
struct Reply {
    status: u16,
    content_type: String,
    body: Value,
    upstream: Option<u16>,
}

impl Edge {
    fn start(nginx: &Path, command_api_port: u16, query_api_port: u16) -> Self {
        let prefix = std::env::temp_dir().join(unique_name("paystream_edge"));
        std::fs::create_dir_all(prefix.join("tmp")).expect("nginx prefix");
        let port = free_port();
        let template = std::fs::read_to_string(template_path()).expect("read the nginx template");
        let config = render(&template, &prefix, port, command_api_port, query_api_port);
        let config_path = prefix.join("nginx.conf");
        std::fs::write(&config_path, config).expect("write nginx.conf");

        let mut edge = Self {
            nginx: nginx.to_owned(),
            prefix,
            port,
            child: None,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
        };
        let test = edge
            .nginx_command()
            .arg("-t")
            .output()
            .expect("run nginx -t");
        assert!(
            test.status.success(),
            "nginx refused the rendered template:\n{}",
            String::from_utf8_lossy(&test.stderr)
        );
        let child = edge
            .nginx_command()
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        edge.child = Some(child);
        edge
    }

    /// `nginx -p <prefix> -e <error log> -c <prefix>/nginx.conf`, as deploy/dev runs it.
    fn nginx_command(&self) -> Command {
        let mut command = Command::new(&self.nginx);
        command
            .arg("-p")
            .arg(format!("{}/", self.prefix.display()))
            .arg("-e")
            .arg(self.prefix.join("nginx-error.log"))
            .arg("-c")
            .arg(self.prefix.join("nginx.conf"));
        command
    }

    async fn wait_until_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let address = format!("127.0.0.1:{}", self.port);
        loop {
            if tokio::net::TcpStream::connect(&address).await.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen on {address} within 10 s; its error log:\n{}",
                self.error_log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.prefix.join("nginx-error.log")).unwrap_or_default()
    }

    /// Sends one request through the edge with a request id of its own, then
    /// finds that id in the access log (so nginx kept the client's id).
    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let request_id = unique_name("edge");
        let base = format!("http://127.0.0.1:{}", self.port);
        let mut reply = call(&self.client, &base, method, path, body, &request_id).await;
        reply.upstream = self.upstream_of(&request_id).await;
        reply
    }

    /// The upstream port in the access log line of `request_id`: the
    /// template logs `upstream=<addr>:<status>`, `upstream=-:-` when nginx
    /// answered itself.
    async fn upstream_of(&self, request_id: &str) -> Option<u16> {
        let marker = format!("request_id={request_id}");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log =
                std::fs::read_to_string(self.prefix.join("nginx-access.log")).unwrap_or_default();
            if let Some(line) = log.lines().find(|line| line.ends_with(&marker)) {
                let field = line
                    .split(' ')
                    .find_map(|word| word.strip_prefix("upstream="))
                    .unwrap_or_else(|| panic!("no upstream= in access log line: {line}"));
                // "127.0.0.1:8082:200", or "-:-".
                let address = field.rsplit_once(':').map_or(field, |(address, _)| address);
                return address
                    .parse::<SocketAddr>()
                    .ok()
                    .map(|address| address.port());
            }
            assert!(
                Instant::now() < deadline,
                "request {request_id} is not in the access log:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A graceful stop ends the workers too; SIGKILL would orphan them.
            let _ = self.nginx_command().args(["-s", "stop"]).output();
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.prefix);
    }
}

/// The template with this test's ports and paths; the web root does not
/// exist, as before the web bundles are built.
fn render(
    template: &str,
    prefix: &Path,
    edge_port: u16,
    command_api_port: u16,
    query_api_port: u16,
) -> String {
    let prefix = prefix.display().to_string();
    let web_root = format!("{prefix}/web-dist-not-built");
    let config = template
        .lines()
        // Workers keep nginx's default user (or ours, when not root).
        .filter(|line| line.trim() != "user @NGINX_USER@;")
        .collect::<Vec<_>>()
        .join("\n")
        .replace("@EDGE_PORT@", &edge_port.to_string())
        .replace("@LISTEN_IPV6@", "# 127.0.0.1 only in this test")
        .replace("@COMMAND_API_PORT@", &command_api_port.to_string())
        .replace("@QUERY_API_PORT@", &query_api_port.to_string())
        .replace("@PREFIX@", &prefix)
        .replace("@LOG_DIR@", &prefix)
        .replace("@WEB_ROOT@", &web_root)
        .replace("@EXAMPLE_PORT@", "9")
        .replace("@LEGACY_LISTEN@", "# no legacy ports in this test")
        .replace("@DASHBOARD_PORT@", "0")
        .replace("@NGINX_USER@", "(default)");
    if let Some(name) = leftover_placeholder(&config) {
        panic!("the template has a placeholder this test does not fill: @{name}@");
    }
    config
}

/// The first `@NAME@` (capitals, digits, `_`) left in `text`.
fn leftover_placeholder(text: &str) -> Option<&str> {
    text.match_indices('@').find_map(|(start, _)| {
        let rest = &text[start + 1..];
        let end =
            rest.find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))?;
        (end > 0 && rest[end..].starts_with('@')).then(|| &rest[..end])
    })
}

fn nginx_binary() -> PathBuf {
    let nginx = PathBuf::from(NGINX);
    assert!(
        nginx.exists(),
        "nginx is not installed ({NGINX} is missing): this test runs the real edge router. \
         `deploy/dev test` installs it (apt-get install nginx)"
    );
    nginx
}

// ------------------------------------------------------------------ services

/// The real command API on port 0: dev profile, no relay, no acquirer.
async fn spawn_command_api(database_url: &str, events_stream: &str) -> SocketAddr {
    use paystream_command_api::config::{Config, Profile};
    use paystream_command_api::startup::Application;

    let config = Config {
        runtime: paystream_kit::config::RuntimeArgs::new(Profile::Dev),
        database: paystream_kit::config::DatabaseArgs {
            database_url: paystream_kit::config::Secret::new(database_url),
            database_max_connections: 8,
        },
        nats: paystream_kit::config::NatsArgs {
            nats_url: nats_url(),
            events_stream: events_stream.to_owned(),
            events_subject_prefix: format!("{}.events", events_stream.to_lowercase()),
        },
        system_ports: paystream_kit::config::SystemPortsArgs::default(),
        http_addr: "127.0.0.1:0".parse().expect("address"),
        relay: false,
        acquirer: false,
        relay_batch_size: 500,
        browser: Default::default(),
        rate: Default::default(),
    };
    let app = Application::build(config)
        .await
        .expect("build the command API");
    let address = app.local_addr().expect("command API address");
    tokio::spawn(app.run_until_stopped());
    address
}

/// The real query API on port 0, over the same database.
async fn spawn_query_api(database_url: &str, events_stream: &str) -> SocketAddr {
    use paystream_query_api::config::{Config, Profile};
    use paystream_query_api::startup::Application;

    let config = Config {
        runtime: paystream_kit::config::RuntimeArgs::new(Profile::Dev),
        database: paystream_kit::config::DatabaseArgs {
            database_url: paystream_kit::config::Secret::new(database_url),
            database_max_connections: 8,
        },
        nats: paystream_kit::config::NatsArgs {
            nats_url: nats_url(),
            events_stream: events_stream.to_owned(),
            events_subject_prefix: "paystream.events".into(),
        },
        http_addr: "127.0.0.1:0".parse().expect("address"),
        acquirer_consumer: "acquirer".into(),
        rate: Default::default(),
    };
    let app = Application::build(config)
        .await
        .expect("build the query API");
    let address = app.local_addr().expect("query API address");
    tokio::spawn(app.run_until_stopped());
    address
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("free port")
}
