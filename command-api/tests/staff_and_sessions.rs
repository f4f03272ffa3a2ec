//! Dashboard logins, sessions and the staff endpoints on merchants, over real
//! HTTP and PostgreSQL. Each test has its own database.

mod support;

use chrono::{DateTime, Utc};
use paystream_domain::dev as seed;
use paystream_kit::http::session::token_hash;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::app::{spawn_app, spawn_app_tuned, TestApp};
use uuid::Uuid;

/// How a request proves who sends it.
#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    Bearer(&'a str),
    Cookie(&'a str),
    Api(&'a str, &'a str),
}

struct Answer {
    status: StatusCode,
    body: Value,
    headers: HeaderMap,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The contract's error shape, with this status and code.
    #[track_caller]
    fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.body["error"]["code"], code, "{}", self.body);
        assert!(
            self.body["error"]["description"].as_str().is_some(),
            "{}",
            self.body
        );
        assert!(self.header("x-event-position").is_none());
    }

    /// A 429 `RATE_LIMITED` with `Retry-After` in whole seconds.
    #[track_caller]
    fn assert_rate_limited(&self) {
        self.assert_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
        let seconds = self.header("retry-after").unwrap_or_default();
        assert!(
            seconds.parse::<u64>().is_ok_and(|s| (1..=60).contains(&s)),
            "Retry-After {seconds:?}"
        );
    }

    #[track_caller]
    fn assert_unauthorized(&self, description: &str) {
        self.assert_error(StatusCode::UNAUTHORIZED, "AUTHENTICATION_ERROR");
        assert_eq!(self.body["error"]["description"], description);
    }
}

impl TestApp {
    /// Sends a request; a 429 `RATE_LIMITED` (password checks are bounded
    /// process-wide, and another test may be bursting) is retried after its
    /// `Retry-After`, as a client would.
    async fn send(&self, method: Method, path: &str, auth: Auth<'_>, body: Option<&str>) -> Answer {
        for _ in 0..20 {
            let answer = self.send_once(method.clone(), path, auth, body).await;
            if answer.status != StatusCode::TOO_MANY_REQUESTS {
                return answer;
            }
            answer.assert_rate_limited();
            let seconds: u64 = answer.header("retry-after").unwrap().parse().unwrap();
            tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
        }
        panic!("{method} {path}: still 429 after 20 tries");
    }

    async fn send_once(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<&str>,
    ) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        request = match auth {
            Auth::None => request,
            Auth::Bearer(token) => request.header("Authorization", format!("Bearer {token}")),
            // As the dashboard's own page sends it: with its Origin.
            Auth::Cookie(token) => request
                .header("Cookie", format!("theme=dark; paystream_session={token}"))
                .header("Origin", "http://localhost:8000"),
            Auth::Api(key, secret) => request
                .header("X-Api-Key", key)
                .header("X-Api-Secret", secret),
        };
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            body,
            headers,
        }
    }

    async fn post(&self, path: &str, auth: Auth<'_>, body: Value) -> Answer {
        self.send(Method::POST, path, auth, Some(&body.to_string()))
            .await
    }

    async fn login(&self, email: &str, password: &str) -> Answer {
        self.post(
            "/api/v1/auth/login",
            Auth::None,
            json!({"email": email, "password": password}),
        )
        .await
    }

    /// A session token of a user who must be able to log in.
    async fn token(&self, email: &str, password: &str) -> String {
        let answer = self.login(email, password).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.body["token"].as_str().unwrap().to_string()
    }

    /// One login, its 429 included (no retry).
    async fn login_once(&self, email: &str, password: &str) -> Answer {
        let body = json!({"email": email, "password": password}).to_string();
        self.send_once(Method::POST, "/api/v1/auth/login", Auth::None, Some(&body))
            .await
    }

    /// One order, its 429 included (no retry).
    async fn order_once(&self, key: &str, secret: &str) -> Answer {
        let body = json!({"amount": 500}).to_string();
        self.send_once(
            Method::POST,
            "/api/v1/orders",
            Auth::Api(key, secret),
            Some(&body),
        )
        .await
    }

    async fn order(&self, key: &str, secret: &str) -> Answer {
        self.post(
            "/api/v1/orders",
            Auth::Api(key, secret),
            json!({"amount": 500}),
        )
        .await
    }

    async fn event_count(&self) -> i64 {
        sqlx::query_scalar("select count(*) from events")
            .fetch_one(self.store.pool())
            .await
            .unwrap()
    }

    /// Rows of `table` whose text form contains `needle`.
    async fn rows_containing(&self, table: &str, needle: &str) -> i64 {
        sqlx::query_scalar(&format!(
            "select count(*) from {table} t where strpos(t::text, $1) > 0"
        ))
        .bind(needle)
        .fetch_one(self.store.pool())
        .await
        .unwrap()
    }
}

const STAFF: (&str, &str) = (seed::DEV_STAFF_EMAIL, seed::DEV_STAFF_PASSWORD);

/// `Secure` is added in the production profile only; these tests run the dev profile.
fn secure_suffix() -> &'static str {
    ""
}

/// A fresh merchant id no one has registered.
fn unknown_merchant() -> String {
    Uuid::now_v7().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_users_log_in_and_their_sessions_work_as_bearer_and_cookie() {
    let app = spawn_app().await;
    let users = [
        (
            seed::DEV_MERCHANT_EMAIL,
            seed::DEV_MERCHANT_PASSWORD,
            "merchant",
        ),
        (seed::DEV_STAFF_EMAIL, seed::DEV_STAFF_PASSWORD, "staff"),
        (
            seed::DEV_AUDITOR_EMAIL,
            seed::DEV_AUDITOR_PASSWORD,
            "auditor",
        ),
    ];
    let mut tokens = Vec::new();
    for (email, password, role) in users {
        let before = Utc::now();
        let answer = app.login(email, password).await;
        assert_eq!(answer.status, StatusCode::OK, "{email}: {}", answer.body);
        assert_eq!(answer.body["role"], role);
        if role == "merchant" {
            assert_eq!(answer.body["merchant_id"], json!(seed::DEV_MERCHANT_ID));
        } else {
            assert!(answer.body.get("merchant_id").is_none(), "{}", answer.body);
        }
        let token = answer.body["token"].as_str().unwrap().to_string();
        assert_eq!(token.len(), 43, "32 bytes in base64url: {token}");
        let expires_at: DateTime<Utc> =
            answer.body["expires_at"].as_str().unwrap().parse().unwrap();
        let lifetime = expires_at - before;
        assert!(
            (chrono::Duration::hours(12) - chrono::Duration::minutes(1)
                ..=chrono::Duration::hours(12) + chrono::Duration::minutes(1))
                .contains(&lifetime),
            "{lifetime:?}"
        );
        assert_eq!(
            answer.header("set-cookie"),
            Some(
                format!(
                    "paystream_session={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age=43200{}",
                    secure_suffix()
                )
                .as_str()
            )
        );
        assert_eq!(answer.header("cache-control"), Some("no-store"));
        // Only the token's hash is stored.
        assert_eq!(app.rows_containing("sessions", &token).await, 0);
        tokens.push(token);
    }
    let [merchant, staff, auditor] = [&tokens[0], &tokens[1], &tokens[2]];

    // The staff session passes the staff check by header and by cookie (and
    // then finds no such merchant).
    let path = format!("/api/v1/merchants/{}/reactivate", unknown_merchant());
    for auth in [Auth::Bearer(staff), Auth::Cookie(staff)] {
        app.send(Method::POST, &path, auth, None)
            .await
            .assert_error(StatusCode::NOT_FOUND, "NOT_FOUND_ERROR");
    }
    // The others are valid sessions, but not staff.
    for token in [merchant, auditor] {
        for auth in [Auth::Bearer(token), Auth::Cookie(token)] {
            app.send(Method::POST, &path, auth, None)
                .await
                .assert_unauthorized("Staff access required");
        }
    }

    // E-mail addresses are case-insensitive.
    let answer = app
        .login(" Admin@Example.COM ", seed::DEV_STAFF_PASSWORD)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);

    // Logout by header ends that session; a second use is a 401.
    let answer = app
        .send(
            Method::POST,
            "/api/v1/auth/logout",
            Auth::Bearer(staff),
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body, json!({"message": "Logged out"}));
    assert_eq!(
        answer.header("set-cookie"),
        Some(
            format!(
                "paystream_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
                secure_suffix()
            )
            .as_str()
        )
    );
    app.send(Method::POST, &path, Auth::Bearer(staff), None)
        .await
        .assert_unauthorized("Invalid or expired session");
    app.send(
        Method::POST,
        "/api/v1/auth/logout",
        Auth::Bearer(staff),
        None,
    )
    .await
    .assert_unauthorized("Invalid or expired session");

    // Logout by cookie.
    let answer = app
        .send(
            Method::POST,
            "/api/v1/auth/logout",
            Auth::Cookie(auditor),
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    app.send(
        Method::POST,
        "/api/v1/auth/logout",
        Auth::Cookie(auditor),
        None,
    )
    .await
    .assert_unauthorized("Invalid or expired session");

    // No session at all.
    app.send(Method::POST, "/api/v1/auth/logout", Auth::None, None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "AUTHENTICATION_ERROR");
    app.send(
        Method::POST,
        "/api/v1/auth/logout",
        Auth::Bearer("not-a-token"),
        None,
    )
    .await
    .assert_unauthorized("Invalid or expired session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_email_get_the_same_401() {
    let app = spawn_app().await;
    let wrong_password = app.login(seed::DEV_STAFF_EMAIL, "admin124").await;
    wrong_password.assert_unauthorized("Invalid email or password");
    let unknown_email = app.login("nobody@example.com", "admin123").await;
    unknown_email.assert_unauthorized("Invalid email or password");
    assert_eq!(wrong_password.body, unknown_email.body);
    assert!(wrong_password.header("set-cookie").is_none());
    // Another user's password does not open this account.
    app.login(seed::DEV_AUDITOR_EMAIL, seed::DEV_STAFF_PASSWORD)
        .await
        .assert_unauthorized("Invalid email or password");
    app.login("", "")
        .await
        .assert_unauthorized("Invalid email or password");

    // Malformed bodies are 400s that name the field.
    let answer = app
        .post(
            "/api/v1/auth/login",
            Auth::None,
            json!({"email": seed::DEV_STAFF_EMAIL}),
        )
        .await;
    answer.assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST_ERROR");
    assert_eq!(answer.body["error"]["field"], "password");
    app.send(Method::POST, "/api/v1/auth/login", Auth::None, Some("{"))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST_ERROR");
    // A NUL (which PostgreSQL text cannot hold) is bad input, never a 503.
    for (email, password, field) in [
        ("admin\u{0}@example.com", "admin123", "email"),
        ("\u{0}", "", "email"),
        (seed::DEV_STAFF_EMAIL, "admin123\u{0}", "password"),
    ] {
        let answer = app.login(email, password).await;
        answer.assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST_ERROR");
        assert_eq!(answer.body["error"]["field"], field, "{}", answer.body);
    }
    let count: i64 = sqlx::query_scalar("select count(*) from sessions")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(count, 0, "failed logins open no session");
}

/// Each password check works in 19 MiB: a burst of logins may not queue
/// without bound (issue 18, item 8). Beyond one check per core and a short
/// queue, logins are refused with a 429 `RATE_LIMITED` and `Retry-After`,
/// never a 5xx; once the burst is over the right password works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_wrong_logins_gets_401s_and_429s_never_5xx() {
    const BURST: usize = 200;
    // The per-address and per-account login limits stay out of the way:
    // this test is about the bound on password checks.
    let app = spawn_app_tuned(paystream_kit::config::Profile::Dev, |config| {
        config.rate.rate_login_per_address = 100_000;
        config.rate.rate_login_free_failures = 100_000;
    })
    .await;
    let answers = futures::future::join_all((0..BURST).map(|i| {
        let app = &app;
        async move {
            // Wrong passwords, and unknown e-mails (the dummy hash's path).
            let email = if i % 2 == 0 {
                seed::DEV_STAFF_EMAIL.to_string()
            } else {
                format!("nobody-{i}@example.com")
            };
            let body = json!({"email": email, "password": "wrong password"}).to_string();
            app.send_once(Method::POST, "/api/v1/auth/login", Auth::None, Some(&body))
                .await
        }
    }))
    .await;
    let (mut unauthorized, mut limited) = (0, 0);
    for answer in &answers {
        match answer.status {
            StatusCode::UNAUTHORIZED => {
                answer.assert_unauthorized("Invalid email or password");
                unauthorized += 1;
            }
            StatusCode::TOO_MANY_REQUESTS => {
                answer.assert_rate_limited();
                limited += 1;
            }
            status => panic!("a login in the burst got {status}: {}", answer.body),
        }
    }
    assert!(unauthorized > 0, "no login of the burst was checked");
    assert!(
        limited > 0,
        "all {BURST} logins were checked: nothing bounds the queue"
    );
    // The burst is over: the right password works.
    let token = app
        .token(seed::DEV_STAFF_EMAIL, seed::DEV_STAFF_PASSWORD)
        .await;
    let sessions: i64 = sqlx::query_scalar("select count(*) from sessions")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(sessions, 1, "only the right password opened a session");
    let logout = app
        .send(
            Method::POST,
            "/api/v1/auth/logout",
            Auth::Bearer(&token),
            None,
        )
        .await;
    assert_eq!(logout.status, StatusCode::OK, "{}", logout.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_is_refused_and_deleted() {
    let app = spawn_app().await;
    let token = "expired-session-token-for-the-test-000000000";
    sqlx::query(
        "insert into sessions (token_hash, email, role, merchant_id, created_at, expires_at) \
         values ($1, $2, 'staff', null, now() - interval '13 hours', now() - interval '1 hour')",
    )
    .bind(token_hash(token))
    .bind(seed::DEV_STAFF_EMAIL)
    .execute(app.store.pool())
    .await
    .unwrap();
    let path = format!("/api/v1/merchants/{}/reactivate", unknown_merchant());
    app.send(Method::POST, &path, Auth::Bearer(token), None)
        .await
        .assert_unauthorized("Invalid or expired session");
    let left: i64 = sqlx::query_scalar("select count(*) from sessions where token_hash = $1")
        .bind(token_hash(token))
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(left, 0, "the expired row is deleted lazily");
    app.send(
        Method::POST,
        "/api/v1/auth/logout",
        Auth::Cookie(token),
        None,
    )
    .await
    .assert_unauthorized("Invalid or expired session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_create_rotate_suspend_and_reactivate_a_merchant() {
    let app = spawn_app().await;
    let staff = app.token(STAFF.0, STAFF.1).await;
    let password = "correct horse battery";

    // Create: the answer shows the secrets once.
    let events_before = app.event_count().await;
    let created = app
        .post(
            "/api/v1/merchants",
            Auth::Bearer(&staff),
            json!({"name": "Acme Stores", "email": "Owner@Acme.example", "password": password, "fee_bps": 150}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert!(created.header("x-event-position").is_some());
    assert_eq!(created.header("cache-control"), Some("no-store"));
    assert_eq!(app.event_count().await, events_before + 1);
    let body = &created.body;
    let id = body["id"].as_str().unwrap().to_string();
    Uuid::parse_str(&id).unwrap();
    assert_eq!(body["name"], "Acme Stores");
    assert_eq!(body["email"], "owner@acme.example");
    assert_eq!(body["fee_bps"], 150);
    assert_eq!(body["status"], "active");
    let key = body["api_key"].as_str().unwrap().to_string();
    let secret = body["api_secret"].as_str().unwrap().to_string();
    let webhook_secret = body["webhook_secret"].as_str().unwrap();
    assert!(key.starts_with("key_") && key.len() == 28, "{key}");
    assert!(
        secret.starts_with("secret_") && secret.len() == 39,
        "{secret}"
    );
    // `whsec_` + base64 of 32 random bytes, which the official Standard
    // Webhooks libraries take as it is.
    assert!(
        webhook_secret.starts_with("whsec_") && webhook_secret.len() == 50,
        "{webhook_secret}"
    );
    assert_eq!(
        base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            &webhook_secret[6..]
        )
        .map(|key| key.len()),
        Ok(32),
        "{webhook_secret}"
    );
    assert_eq!(body["standard_webhooks_secret"], webhook_secret);
    let actor: String =
        sqlx::query_scalar("select actor from events order by position desc limit 1")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert_eq!(actor, "staff:admin@example.com");

    // The key and secret work on the merchant API.
    let order = app.order(&key, &secret).await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.body);
    assert_eq!(order.body["merchant_id"], json!(id));

    // Neither the secret nor the password is stored in clear anywhere.
    for table in ["events", "merchant_credentials", "users", "merchant_emails"] {
        assert_eq!(app.rows_containing(table, &secret).await, 0, "{table}");
        assert_eq!(app.rows_containing(table, password).await, 0, "{table}");
    }
    let password_hash: String =
        sqlx::query_scalar("select password_hash from users where email = 'owner@acme.example'")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert!(password_hash.starts_with("$argon2id$"), "{password_hash}");

    // Its user logs in as that merchant.
    let login = app.login("owner@acme.example", password).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    assert_eq!(login.body["role"], "merchant");
    assert_eq!(login.body["merchant_id"], json!(id));
    let merchant_session = login.body["token"].as_str().unwrap().to_string();

    // The e-mail is taken, in any case, and so are users' addresses.
    let events_before = app.event_count().await;
    for email in [
        "owner@acme.example",
        "OWNER@acme.example",
        "admin@example.com",
        "test@example.com",
    ] {
        app.post(
            "/api/v1/merchants",
            Auth::Bearer(&staff),
            json!({"name": "Copy", "email": email}),
        )
        .await
        .assert_error(StatusCode::CONFLICT, "CONFLICT_ERROR");
    }
    assert_eq!(app.event_count().await, events_before);

    // Rotate: the old pair stops working, the new one works.
    let rotated = app
        .post(
            &format!("/api/v1/merchants/{id}/rotate-keys"),
            Auth::Bearer(&staff),
            json!({}),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    assert!(rotated.header("x-event-position").is_some());
    let new_key = rotated.body["api_key"].as_str().unwrap().to_string();
    let new_secret = rotated.body["api_secret"].as_str().unwrap().to_string();
    assert_ne!(new_key, key);
    assert_ne!(new_secret, secret);
    app.order(&key, &secret)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "AUTHENTICATION_ERROR");
    assert_eq!(
        app.order(&new_key, &new_secret).await.status,
        StatusCode::CREATED
    );
    for table in ["events", "merchant_credentials"] {
        assert_eq!(app.rows_containing(table, &new_secret).await, 0, "{table}");
    }

    // Suspend: API calls, logins and open sessions all stop.
    let suspended = app
        .post(
            &format!("/api/v1/merchants/{id}/suspend"),
            Auth::Cookie(&staff),
            json!({"reason": "chargebacks"}),
        )
        .await;
    assert_eq!(suspended.status, StatusCode::OK, "{}", suspended.body);
    assert_eq!(suspended.body["status"], "suspended");
    assert_eq!(suspended.body["suspension_reason"], "chargebacks");
    assert!(suspended.header("x-event-position").is_some());
    app.order(&new_key, &new_secret)
        .await
        .assert_unauthorized("Merchant account is suspended");
    app.login("owner@acme.example", password)
        .await
        .assert_unauthorized("Merchant account is suspended");
    app.send(
        Method::POST,
        "/api/v1/auth/logout",
        Auth::Bearer(&merchant_session),
        None,
    )
    .await
    .assert_unauthorized("Invalid or expired session");
    // A wrong password still says only that.
    app.login("owner@acme.example", "wrong password")
        .await
        .assert_unauthorized("Invalid email or password");
    // Suspending twice is a conflict and appends nothing.
    let events_before = app.event_count().await;
    app.post(
        &format!("/api/v1/merchants/{id}/suspend"),
        Auth::Bearer(&staff),
        json!({"reason": "again"}),
    )
    .await
    .assert_error(StatusCode::CONFLICT, "CONFLICT_ERROR");
    assert_eq!(app.event_count().await, events_before);

    // Reactivate: everything works again.
    let reactivated = app
        .send(
            Method::POST,
            &format!("/api/v1/merchants/{id}/reactivate"),
            Auth::Bearer(&staff),
            None,
        )
        .await;
    assert_eq!(reactivated.status, StatusCode::OK, "{}", reactivated.body);
    assert_eq!(reactivated.body["status"], "active");
    assert!(reactivated.header("x-event-position").is_some());
    assert_eq!(
        app.order(&new_key, &new_secret).await.status,
        StatusCode::CREATED
    );
    let login = app.login("owner@acme.example", password).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    app.send(
        Method::POST,
        &format!("/api/v1/merchants/{id}/reactivate"),
        Auth::Bearer(&staff),
        None,
    )
    .await
    .assert_error(StatusCode::CONFLICT, "CONFLICT_ERROR");

    // A merchant created without a password has no login, and a default fee.
    let created = app
        .post(
            "/api/v1/merchants",
            Auth::Bearer(&staff),
            json!({"name": "No Login", "email": "nologin@example.com"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["fee_bps"], 200);
    let users: i64 =
        sqlx::query_scalar("select count(*) from users where email = 'nologin@example.com'")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert_eq!(users, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_endpoints_refuse_everyone_but_staff() {
    let app = spawn_app().await;
    let merchant = app
        .token(seed::DEV_MERCHANT_EMAIL, seed::DEV_MERCHANT_PASSWORD)
        .await;
    let auditor = app
        .token(seed::DEV_AUDITOR_EMAIL, seed::DEV_AUDITOR_PASSWORD)
        .await;
    let dev = seed::DEV_MERCHANT_ID.to_string();
    let requests = [
        (
            "/api/v1/merchants".to_string(),
            json!({"name": "X", "email": "x@example.com"}),
        ),
        (format!("/api/v1/merchants/{dev}/rotate-keys"), json!({})),
        (
            format!("/api/v1/merchants/{dev}/suspend"),
            json!({"reason": "r"}),
        ),
        (format!("/api/v1/merchants/{dev}/reactivate"), json!({})),
    ];
    let events_before = app.event_count().await;
    for (path, body) in &requests {
        for auth in [
            Auth::None,
            Auth::Bearer(&merchant),
            Auth::Cookie(&merchant),
            Auth::Bearer(&auditor),
            Auth::Api(seed::DEV_API_KEY, seed::DEV_API_SECRET),
            Auth::Bearer("forged"),
        ] {
            let answer = app.post(path, auth, body.clone()).await;
            answer.assert_error(StatusCode::UNAUTHORIZED, "AUTHENTICATION_ERROR");
        }
        app.post(path, Auth::Bearer(&merchant), body.clone())
            .await
            .assert_unauthorized("Staff access required");
    }
    assert_eq!(app.event_count().await, events_before);
    // The dev merchant was not touched.
    assert_eq!(
        app.order(seed::DEV_API_KEY, seed::DEV_API_SECRET)
            .await
            .status,
        StatusCode::CREATED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_staff_inputs_are_4xx_and_append_nothing() {
    let app = spawn_app().await;
    let staff = app.token(STAFF.0, STAFF.1).await;
    let events_before = app.event_count().await;
    let long_name = "n".repeat(256);
    let bodies: Vec<(&str, String, &str)> = vec![
        (
            "missing name",
            json!({"email": "a@example.com"}).to_string(),
            "name",
        ),
        (
            "empty name",
            json!({"name": "  ", "email": "a@example.com"}).to_string(),
            "name",
        ),
        (
            "long name",
            json!({"name": long_name, "email": "a@example.com"}).to_string(),
            "name",
        ),
        ("missing email", json!({"name": "A"}).to_string(), "email"),
        (
            "bad email",
            json!({"name": "A", "email": "not-an-email"}).to_string(),
            "email",
        ),
        (
            "email with space",
            json!({"name": "A", "email": "a b@example.com"}).to_string(),
            "email",
        ),
        (
            "fee too high",
            json!({"name": "A", "email": "a@example.com", "fee_bps": 10001}).to_string(),
            "fee_bps",
        ),
        (
            "negative fee",
            json!({"name": "A", "email": "a@example.com", "fee_bps": -1}).to_string(),
            "fee_bps",
        ),
        (
            "fee as text",
            json!({"name": "A", "email": "a@example.com", "fee_bps": "1"}).to_string(),
            "fee_bps",
        ),
        (
            "short password",
            json!({"name": "A", "email": "a@example.com", "password": "short"}).to_string(),
            "password",
        ),
        (
            "name not text",
            json!({"name": 7, "email": "a@example.com"}).to_string(),
            "name",
        ),
        (
            "NUL in the name",
            json!({"name": "Acme\u{0}", "email": "a@example.com"}).to_string(),
            "name",
        ),
        (
            "NUL in the email",
            json!({"name": "A", "email": "a\u{0}@example.com"}).to_string(),
            "email",
        ),
        (
            "NUL in the password",
            json!({"name": "A", "email": "a@example.com", "password": "pass\u{0}word"}).to_string(),
            "password",
        ),
    ];
    for (case, body, field) in &bodies {
        let answer = app
            .send(
                Method::POST,
                "/api/v1/merchants",
                Auth::Bearer(&staff),
                Some(body),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{case}: {}",
            answer.body
        );
        answer.assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST_ERROR");
        assert_eq!(
            answer.body["error"]["field"], *field,
            "{case}: {}",
            answer.body
        );
    }
    for body in ["", "{", "[]", "null"] {
        app.send(
            Method::POST,
            "/api/v1/merchants",
            Auth::Bearer(&staff),
            Some(body),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST_ERROR");
    }
    // Unknown and malformed merchant ids are 404s.
    for id in [unknown_merchant().as_str(), "not-a-uuid", "550e8400"] {
        for action in ["rotate-keys", "reactivate"] {
            app.send(
                Method::POST,
                &format!("/api/v1/merchants/{id}/{action}"),
                Auth::Bearer(&staff),
                None,
            )
            .await
            .assert_error(StatusCode::NOT_FOUND, "NOT_FOUND_ERROR");
        }
        app.post(
            &format!("/api/v1/merchants/{id}/suspend"),
            Auth::Bearer(&staff),
            json!({"reason": "r"}),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND, "NOT_FOUND_ERROR");
    }
    // An id that is not UTF-8 once percent-decoded: our 400, naming it.
    for action in ["rotate-keys", "suspend", "reactivate"] {
        let answer = app
            .send(
                Method::POST,
                &format!("/api/v1/merchants/%ff%fe/{action}"),
                Auth::Bearer(&staff),
                Some(r#"{"reason": "r"}"#),
            )
            .await;
        answer.assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST_ERROR");
        assert_eq!(answer.body["error"]["field"], "id", "{action}");
    }
    // A reason over 255 characters, or with a NUL.
    let dev = seed::DEV_MERCHANT_ID;
    let answer = app
        .post(
            &format!("/api/v1/merchants/{dev}/suspend"),
            Auth::Bearer(&staff),
            json!({"reason": "fraud\u{0}"}),
        )
        .await;
    answer.assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST_ERROR");
    assert_eq!(answer.body["error"]["field"], "reason");
    let answer = app
        .post(
            &format!("/api/v1/merchants/{dev}/suspend"),
            Auth::Bearer(&staff),
            json!({"reason": "r".repeat(256)}),
        )
        .await;
    answer.assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST_ERROR");
    assert_eq!(answer.body["error"]["field"], "reason");
    assert_eq!(app.event_count().await, events_before);
    let claims: i64 = sqlx::query_scalar("select count(*) from merchant_emails")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(claims, 1, "only the dev merchant's e-mail is claimed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_staff_commands_leave_credentials_as_the_events_say() {
    let app = spawn_app().await;
    let staff = app.token(STAFF.0, STAFF.1).await;
    let created = app
        .post(
            "/api/v1/merchants",
            Auth::Bearer(&staff),
            json!({"name": "Busy", "email": "busy@example.com"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    let requests = (0..12).map(|round| {
        let (app, staff, id) = (&app, &staff, &id);
        async move {
            let action = ["suspend", "rotate-keys", "reactivate"][round % 3];
            let answer = app
                .post(
                    &format!("/api/v1/merchants/{id}/{action}"),
                    Auth::Bearer(staff),
                    json!({"reason": "busy"}),
                )
                .await;
            // Suspending a suspended merchant (or the reverse) is a 409.
            assert!(
                answer.status == StatusCode::OK || answer.status == StatusCode::CONFLICT,
                "{action}: {} {}",
                answer.status,
                answer.body
            );
        }
    });
    futures::future::join_all(requests).await;

    let merchant_id: paystream_domain::MerchantId = id.parse().unwrap();
    let loaded = paystream_store::runner::load::<paystream_domain::merchant::MerchantAggregate>(
        &app.store,
        merchant_id,
    )
    .await
    .unwrap();
    let merchant = loaded.state.unwrap();
    let (api_key, secret_hash, active): (String, String, bool) = sqlx::query_as(
        "select api_key, api_secret_hash, active from merchant_credentials where merchant_id = $1",
    )
    .bind(Uuid::parse_str(&id).unwrap())
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(api_key, merchant.api_key);
    assert_eq!(secret_hash, merchant.api_secret_hash);
    assert_eq!(active, merchant.is_active());
}

/// The dashboard acts for its merchant with the session (cookie or bearer),
/// on the merchant's own objects; staff and auditor sessions cannot act for
/// a merchant, and a forged token is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_session_acts_for_its_merchant() {
    let app = spawn_app().await;
    let merchant = app
        .login(seed::DEV_MERCHANT_EMAIL, seed::DEV_MERCHANT_PASSWORD)
        .await;
    let token = merchant.body["token"].as_str().unwrap().to_owned();
    let order = r#"{"amount": 50000}"#;
    for auth in [Auth::Bearer(&token), Auth::Cookie(&token)] {
        let answer = app
            .send(Method::POST, "/api/v1/orders", auth, Some(order))
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        assert_eq!(
            answer.body["merchant_id"],
            seed::DEV_MERCHANT_ID.to_string()
        );
    }
    let answer = app
        .send(
            Method::PUT,
            "/api/v1/webhooks/config",
            Auth::Cookie(&token),
            Some(r#"{"url": "http://127.0.0.1:9/hook"}"#),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);

    for (email, password) in [
        (seed::DEV_STAFF_EMAIL, seed::DEV_STAFF_PASSWORD),
        (seed::DEV_AUDITOR_EMAIL, seed::DEV_AUDITOR_PASSWORD),
    ] {
        let other = app.login(email, password).await;
        let other = other.body["token"].as_str().unwrap().to_owned();
        app.send(Method::POST, "/api/v1/orders", Auth::Bearer(&other), Some(order))
            .await
            .assert_unauthorized(
                "This endpoint acts for one merchant: use the merchant's API credentials or a merchant session",
            );
    }
    app.send(
        Method::POST,
        "/api/v1/orders",
        Auth::Bearer("forged"),
        Some(order),
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED, "AUTHENTICATION_ERROR");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_rotates_its_own_keys() {
    let app = spawn_app().await;
    let staff = app.token(STAFF.0, STAFF.1).await;
    let password = "own keys please";
    let mut merchants = Vec::new();
    for (name, email) in [
        ("Own Keys", "own@keys.example"),
        ("Bystander", "by@keys.example"),
    ] {
        let created = app
            .post(
                "/api/v1/merchants",
                Auth::Bearer(&staff),
                json!({"name": name, "email": email, "password": password}),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        merchants.push((
            created.body["id"].as_str().unwrap().to_string(),
            created.body["api_key"].as_str().unwrap().to_string(),
            created.body["api_secret"].as_str().unwrap().to_string(),
        ));
    }
    let (id, key, secret) = merchants[0].clone();
    let (_, other_key, other_secret) = merchants[1].clone();

    // With its API credentials: a new pair, shown once; the old one stops.
    let rotated = app
        .send(
            Method::POST,
            "/api/v1/merchant/rotate-keys",
            Auth::Api(&key, &secret),
            None,
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    assert!(rotated.header("x-event-position").is_some());
    assert_eq!(rotated.header("cache-control"), Some("no-store"));
    assert_eq!(rotated.body["id"], json!(id));
    let new_key = rotated.body["api_key"].as_str().unwrap().to_string();
    let new_secret = rotated.body["api_secret"].as_str().unwrap().to_string();
    assert!(new_key.starts_with("key_") && new_key != key, "{new_key}");
    assert!(new_secret.starts_with("secret_") && new_secret != secret);
    assert_eq!(
        app.order(&key, &secret).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.order(&new_key, &new_secret).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        app.order(&other_key, &other_secret).await.status,
        StatusCode::CREATED,
        "another merchant's keys are untouched"
    );
    let actor: String = sqlx::query_scalar(
        "select actor from events where stream_id like '%' || $1 order by position desc limit 1",
    )
    .bind(&id)
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(actor, format!("merchant:{id}"));
    assert_eq!(app.rows_containing("events", &new_secret).await, 0);

    // From the dashboard, with its user's session cookie.
    let session = app.token("own@keys.example", password).await;
    let again = app
        .send(
            Method::POST,
            "/api/v1/merchant/rotate-keys",
            Auth::Cookie(&session),
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    let (last_key, last_secret) = (
        again.body["api_key"].as_str().unwrap(),
        again.body["api_secret"].as_str().unwrap(),
    );
    assert_eq!(
        app.order(&new_key, &new_secret).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.order(last_key, last_secret).await.status,
        StatusCode::CREATED
    );

    // Nobody else may, and a body must be empty or a JSON object.
    let events_before = app.event_count().await;
    app.send(
        Method::POST,
        "/api/v1/merchant/rotate-keys",
        Auth::None,
        None,
    )
    .await
    .assert_error(StatusCode::UNAUTHORIZED, "AUTHENTICATION_ERROR");
    app.send(
        Method::POST,
        "/api/v1/merchant/rotate-keys",
        Auth::Bearer(&staff),
        None,
    )
    .await
    .assert_unauthorized(
        "This endpoint acts for one merchant: use the merchant's API credentials or a merchant session",
    );
    app.send(
        Method::POST,
        "/api/v1/merchant/rotate-keys",
        Auth::Api(&key, &secret),
        None,
    )
    .await
    .assert_unauthorized("Invalid API credentials");
    app.send(
        Method::POST,
        "/api/v1/merchant/rotate-keys",
        Auth::Api(last_key, last_secret),
        Some("[1]"),
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST, "BAD_REQUEST_ERROR");
    assert_eq!(app.event_count().await, events_before);
}

/// A page on another port or host cannot use a dashboard user's cookie:
/// every cookie-authenticated command needs the dashboard's Origin, and a
/// body that is not JSON is a 415. Nothing is appended either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_commands_from_other_origins_are_refused() {
    let app = spawn_app().await;
    let staff = app
        .token(seed::DEV_STAFF_EMAIL, seed::DEV_STAFF_PASSWORD)
        .await;
    let merchant = app
        .token(seed::DEV_MERCHANT_EMAIL, seed::DEV_MERCHANT_PASSWORD)
        .await;
    let id = seed::DEV_MERCHANT_ID;
    let cookie = |token: &str| format!("paystream_session={token}");
    let attempts: Vec<(&str, String, &String, &str)> = vec![
        (
            "suspend",
            format!("/api/v1/merchants/{id}/suspend"),
            &staff,
            "{}",
        ),
        (
            "rotate-keys",
            format!("/api/v1/merchants/{id}/rotate-keys"),
            &staff,
            "",
        ),
        (
            "create merchant",
            "/api/v1/merchants".into(),
            &staff,
            r#"{"name": "Evil", "email": "evil@example.com"}"#,
        ),
        (
            "own rotate-keys",
            "/api/v1/merchant/rotate-keys".into(),
            &merchant,
            "",
        ),
        (
            "capture",
            "/api/v1/payments/pay_AAAAAAAAAAAAAAAA/capture".into(),
            &merchant,
            r#"{"amount": 100}"#,
        ),
        (
            "refund",
            "/api/v1/payments/pay_AAAAAAAAAAAAAAAA/refunds".into(),
            &merchant,
            r#"{"amount": 100}"#,
        ),
    ];
    for (name, path, token, body) in &attempts {
        for (origin, content_type, want) in [
            (
                Some("http://localhost:4995"),
                "application/json",
                StatusCode::FORBIDDEN,
            ),
            (
                Some("http://evil.test"),
                "application/json",
                StatusCode::FORBIDDEN,
            ),
            (Some("null"), "application/json", StatusCode::FORBIDDEN),
            (None, "application/json", StatusCode::FORBIDDEN),
            (
                Some("http://localhost:4995"),
                "text/plain",
                StatusCode::FORBIDDEN,
            ),
            // The dashboard's own origin, but a form's body.
            (
                Some("http://localhost:8000"),
                "application/x-www-form-urlencoded",
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
        ] {
            let before = app.event_count().await;
            let mut request = app
                .client
                .post(format!("{}{path}", app.base))
                .header("Cookie", cookie(token))
                .header("Content-Type", content_type)
                .body(if body.is_empty() {
                    "x=1".to_string()
                } else {
                    body.to_string()
                });
            if let Some(origin) = origin {
                request = request.header("Origin", origin);
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            let answer: Value = response.json().await.unwrap_or(Value::Null);
            assert_eq!(
                status, want,
                "{name} from {origin:?} as {content_type}: {answer}"
            );
            assert!(answer["error"]["code"].is_string(), "{name}: {answer}");
            assert_eq!(app.event_count().await, before, "{name} from {origin:?}");
        }
    }
    // The same session with the dashboard's Origin works, and a bearer
    // token (which no other page can make a browser send) needs none.
    let answer = app
        .send(
            Method::POST,
            &format!("/api/v1/merchants/{id}/suspend"),
            Auth::Cookie(&staff),
            Some("{}"),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let answer = app
        .send(
            Method::POST,
            &format!("/api/v1/merchants/{id}/reactivate"),
            Auth::Bearer(&staff),
            None,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

/// After the free failures, each wrong password locks the account for
/// longer: even the right password gets a 429 until staff lift it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_lock_the_account_until_staff_unlock_it() {
    let app = spawn_app().await;
    let staff = app
        .token(seed::DEV_STAFF_EMAIL, seed::DEV_STAFF_PASSWORD)
        .await;
    let email = seed::DEV_AUDITOR_EMAIL;
    // Five failures are free; the sixth locks for 1 s, then 2, 4, 8 s. A
    // locked attempt checks no password and counts no failure: wait it out.
    let (mut failures, mut limited) = (0, 0);
    for _ in 0..60 {
        let answer = app.login_once(email, "wrong").await;
        match answer.status.as_u16() {
            401 => failures += 1,
            429 => {
                limited += 1;
                let wait: u64 = answer.header("retry-after").unwrap().parse().unwrap();
                assert!(wait <= 8, "{wait}");
                tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
            }
            other => panic!("{other}: {}", answer.body),
        }
        if failures == 9 {
            break;
        }
    }
    assert_eq!(failures, 9);
    assert!(limited >= 1, "no attempt was refused");
    // Locked for 8 s now: the right password is refused too.
    let locked = app.login_once(email, seed::DEV_AUDITOR_PASSWORD).await;
    locked.assert_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    let retry_after: u64 = locked.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");

    // Only staff may lift it.
    let body = json!({ "email": email.to_uppercase() });
    let answer = app
        .post("/api/v1/auth/unlock", Auth::None, body.clone())
        .await;
    answer.assert_error(StatusCode::UNAUTHORIZED, "AUTHENTICATION_ERROR");
    let answer = app
        .post("/api/v1/auth/unlock", Auth::Bearer(&staff), body)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["unlocked"], true);
    assert_eq!(
        app.login(email, seed::DEV_AUDITOR_PASSWORD).await.status,
        StatusCode::OK
    );
}

/// Wrong secrets for a key spend its budget; then even the right secret is
/// refused (else the answer would tell which secret is right).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_api_secrets_are_throttled_per_key() {
    let app = spawn_app().await;
    let mut statuses = Vec::new();
    for _ in 0..14 {
        statuses.push(
            app.order_once(seed::DEV_API_KEY, "wrong")
                .await
                .status
                .as_u16(),
        );
    }
    assert!(
        statuses[..10].iter().all(|status| *status == 401),
        "{statuses:?}"
    );
    assert!(
        statuses[11..].iter().all(|status| *status == 429),
        "{statuses:?}"
    );
    let answer = app
        .order_once(seed::DEV_API_KEY, seed::DEV_API_SECRET)
        .await;
    answer.assert_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    assert!(answer.header("retry-after").is_some());
}
