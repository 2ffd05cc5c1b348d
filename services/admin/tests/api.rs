//! The admin API over real HTTP against a real PostgreSQL: happy paths, bad input, auth, OpenAPI.
#![allow(clippy::unwrap_used)] // test helpers may panic: that is how a test fails

use mc_admin::api::AppState;
use mc_directory::Directory;
use mc_policy::{DeliverySettings, IpRanges};
use mc_testkit::TestDatabase;
use mc_types::Secret;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "test-token-0123456789";

struct Api {
    db: TestDatabase,
    base: String,
    http: reqwest::Client,
    shutdown: CancellationToken,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start() -> Api {
    let db = TestDatabase::migrated().await;
    let mut registry = mc_runtime::metrics::registry("admin");
    let state = AppState {
        redis: None,
        directory: Directory::new(db.pool.clone()),
        ip_ranges: IpRanges::new(db.pool.clone()),
        delivery: DeliverySettings::new(db.pool.clone()),
        queue: mc_queue::Queue::new(db.pool.clone()),
        pool: db.pool.clone(),
        whitelist: mc_policy::Whitelist::new(db.pool.clone()),
        blacklists: mc_policy::DnsBlacklists::new(db.pool.clone()),
        incoming_relays: mc_policy::IncomingRelays::new(db.pool.clone()),
        bans: mc_policy::Bans::new(db.pool.clone()),
        token: Arc::new(Secret::new(TOKEN.to_string())),
        metrics: mc_admin::metrics::ApiMetrics::register(&mut registry),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    tokio::spawn(mc_admin::serve(
        listener,
        state,
        64 * 1024,
        shutdown.clone(),
    ));
    Api {
        db,
        base,
        http: reqwest::Client::new(),
        shutdown,
    }
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap()
            },
        )
    }
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
    async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::PATCH, path, Some(body)).await
    }
    async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }
    async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }
}

fn kind(body: &Value) -> &str {
    body["error"]["kind"].as_str().unwrap_or("<none>")
}

#[tokio::test]
async fn every_route_in_the_openapi_document_needs_the_bearer_token() {
    let api = start().await;
    let doc: Value = api
        .http
        .get(format!("{}/openapi.json", api.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut checked = 0;
    for (path, operations) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{domain}", "example.test")
            .replace("{address}", "a@example.test")
            .replace("{alias}", "alias.test")
            .replace("{member}", "m@example.test")
            .replace("{name}", "Internet")
            .replace("{id}", "01927f3c-5d2e-7a4b-9c1d-2e3f4a5b6c7d")
            .replace("{kind}", "dnsbl")
            .replace("{zone}", "zen.spamhaus.org")
            .replace("{ip}", "192.0.2.1");
        for method in operations.as_object().unwrap().keys() {
            let method: reqwest::Method = method.to_uppercase().parse().unwrap();
            let bad = [
                None,
                Some("Bearer wrong-token-0123456789".to_string()),
                Some("Basic dGVzdA==".to_string()),
                Some(TOKEN.to_string()),
            ];
            for auth in bad {
                let mut request = api
                    .http
                    .request(method.clone(), format!("{}{concrete}", api.base))
                    .json(&json!({}));
                if let Some(auth) = auth {
                    request = request.header("authorization", auth);
                }
                let response = request.send().await.unwrap();
                assert_eq!(
                    response.status(),
                    StatusCode::UNAUTHORIZED,
                    "{method} {concrete}"
                );
                let body: Value = response.json().await.unwrap();
                assert_eq!(kind(&body), "unauthorized");
                checked += 1;
            }
        }
    }
    assert!(checked >= 4 * 30, "only {checked} requests checked");
    assert_eq!(
        api.get("/ip-ranges/Internet").await.0,
        StatusCode::OK,
        "nothing was changed"
    );
    assert_eq!(
        api.get("/domains").await.0,
        StatusCode::OK,
        "the right token works"
    );
}

#[tokio::test]
async fn openapi_document_is_served_without_auth_and_lists_the_routes() {
    let api = start().await;
    let doc: Value = api
        .http
        .get(format!("{}/openapi.json", api.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/v1/domains",
        "/api/v1/accounts/{address}",
        "/api/v1/lists/{address}/members",
        "/api/v1/ip-ranges",
        "/api/v1/routes/{domain}",
        "/api/v1/relayer",
        "/api/v1/domains/{domain}/dkim",
        "/api/v1/queue",
        "/api/v1/queue/{id}",
        "/api/v1/queue/{id}/retry",
        "/api/v1/queue/purge",
        "/api/v1/antispam/{name}",
        "/api/v1/whitelist/{id}",
        "/api/v1/dnsbl/{kind}/{zone}/enable",
        "/api/v1/incoming-relays/{name}",
        "/api/v1/bans/{ip}",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn domain_account_alias_and_list_happy_path() {
    let api = start().await;
    let (status, domain) = api
        .post("/domains", json!({ "name": "Example.test" }))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(domain["name"], "example.test");
    assert_eq!(
        api.post(
            "/domains/example.test/aliases",
            json!({ "name": "example.org" })
        )
        .await
        .0,
        StatusCode::CREATED
    );

    let (status, account) = api
        .post("/accounts", json!({ "address": "alice@example.test", "password": "correct horse", "quota_bytes": 1048576 }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    assert_eq!(account["quota_bytes"], 1048576);
    assert!(account.get("password").is_none() && account.get("password_hash").is_none());
    let (_, accounts) = api.get("/accounts?domain=example.test").await;
    assert_eq!(accounts.as_array().unwrap().len(), 1);

    let (status, _) = api
        .patch(
            "/accounts/alice@example.test",
            json!({ "quota_bytes": 0, "active": false }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, alice) = api.get("/accounts/alice@example.test").await;
    assert_eq!(
        (alice["quota_bytes"].as_i64(), alice["active"].as_bool()),
        (Some(0), Some(false))
    );

    assert_eq!(
        api.post(
            "/aliases",
            json!({ "address": "info@example.test", "target": "alice@example.test" })
        )
        .await
        .0,
        StatusCode::CREATED
    );
    assert_eq!(
        api.post("/lists", json!({ "address": "team@example.test" }))
            .await
            .0,
        StatusCode::CREATED
    );
    let (status, list) = api
        .post(
            "/lists/team@example.test/members",
            json!({ "address": "alice@example.test" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(list["members"], json!(["alice@example.test"]));
    let (_, list) = api
        .delete("/lists/team@example.test/members/alice@example.test")
        .await;
    assert_eq!(list["members"], json!([]));

    let (_, domain) = api
        .call(
            reqwest::Method::PUT,
            "/domains/example.test/catch-all",
            Some(json!({ "address": "alice@example.test" })),
        )
        .await;
    assert_eq!(domain["catch_all"], "alice@example.test");
    let (_, domain) = api.delete("/domains/example.test/catch-all").await;
    assert_eq!(domain["catch_all"], Value::Null);

    assert_eq!(
        api.delete("/domains/example.test").await.0,
        StatusCode::CONFLICT,
        "domain still holds objects"
    );
    assert_eq!(
        api.delete("/domains/example.test?force=true").await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(api.get("/domains").await.1, json!([]));
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_writes_nothing() {
    let api = start().await;
    api.post("/domains", json!({ "name": "example.test" }))
        .await;
    let cases = [
        (
            "/domains",
            json!({ "name": "no-dot" }),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "/domains",
            json!({ "name": "example.test" }),
            StatusCode::CONFLICT,
            "already_exists",
        ),
        (
            "/domains",
            json!({ "nom": "x.test" }),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "/accounts",
            json!({ "address": "not an address", "password": "long enough" }),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "/accounts",
            json!({ "address": "bob@unknown.test", "password": "long enough" }),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "/accounts",
            json!({ "address": "bob@example.test", "password": "short" }),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "/accounts",
            json!({ "address": "bob@example.test", "password": "long enough", "quota_bytes": -1 }),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "/accounts",
            json!({ "address": "bob@example.test", "password": "long enough", "quota_bytes": "5M" }),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "/aliases",
            json!({ "address": "a@example.test", "target": "@@" }),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "/ip-ranges",
            json!({ "name": "x", "priority": 5000, "lower": "10.0.0.1", "upper": "10.0.0.2" }),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
        (
            "/ip-ranges",
            json!({ "name": "x", "priority": 5, "lower": "not-an-ip", "upper": "10.0.0.2" }),
            StatusCode::BAD_REQUEST,
            "invalid",
        ),
    ];
    for (path, body, status, expected_kind) in cases {
        let (got, response) = api.post(path, body.clone()).await;
        assert_eq!(
            (got, kind(&response)),
            (status, expected_kind),
            "{path} {body}: {response}"
        );
        assert!(!response["error"]["message"].as_str().unwrap().is_empty());
    }
    let (status, body) = api.delete("/domains/example.test?force=maybe").await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::BAD_REQUEST, "invalid"),
        "bad query strings get the JSON error too"
    );
    let (status, body) = api
        .patch(
            "/accounts/x@example.test",
            json!({ "first_name": "nul\u{0}byte" }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    api.post(
        "/accounts",
        json!({ "address": "n@example.test", "password": "long enough" }),
    )
    .await;
    let (status, body) = api
        .patch(
            "/accounts/n@example.test",
            json!({ "first_name": "nul\u{0}byte" }),
        )
        .await;
    assert_eq!(
        (status, kind(&body)),
        (StatusCode::BAD_REQUEST, "invalid"),
        "data the database refuses is the client's error: {body}"
    );
    api.delete("/accounts/n@example.test").await;
    let raw = api
        .http
        .post(format!("{}/api/v1/domains", api.base))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        api.get("/accounts").await.1,
        json!([]),
        "nothing was written"
    );
    assert_eq!(api.get("/domains/none.test").await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        api.delete("/accounts/ghost@example.test").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn ip_ranges_are_listed_added_and_removed() {
    let api = start().await;
    let (_, ranges) = api.get("/ip-ranges").await;
    let names: Vec<&str> = ranges
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "My computer",
            "My computer (IPv6)",
            "Internet",
            "Internet (IPv6)"
        ]
    );
    let (status, range) = api
        .post("/ip-ranges", json!({ "name": "office", "priority": 50, "lower": "192.0.2.0", "upper": "192.0.2.255", "allow_pop3": false }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{range}");
    assert_eq!(range["allow_pop3"], false);
    assert_eq!(
        range["allow_external_to_external"], false,
        "safe default: no relaying for outsiders"
    );
    assert_eq!(
        api.delete("/ip-ranges/office").await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.delete("/ip-ranges/office").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn antispam_knobs_refuse_unknown_names_with_404_and_bad_values_with_400() {
    let api = start().await;
    let (status, body) = api
        .put("/antispam/no_such_knob", json!({ "value": 1 }))
        .await;
    assert_eq!((status, kind(&body)), (StatusCode::NOT_FOUND, "not_found"));
    assert_eq!(
        api.delete("/antispam/no_such_knob").await.0,
        StatusCode::NOT_FOUND
    );
    for bad in [
        json!({ "value": "seven" }),
        json!({ "value": 0 }),
        json!({}),
        json!({ "value": 7, "x": 1 }),
    ] {
        let (status, body) = api.put("/antispam/mark_threshold", bad.clone()).await;
        assert_eq!(
            (status, kind(&body)),
            (StatusCode::BAD_REQUEST, "invalid"),
            "{bad}"
        );
    }
    let (status, knob) = api
        .put("/antispam/mark_threshold", json!({ "value": 7 }))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        knob,
        json!({ "name": "mark_threshold", "value": 7, "set": true })
    );
    let (status, knob) = api.delete("/antispam/mark_threshold").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        knob,
        json!({ "name": "mark_threshold", "value": 5, "set": false })
    );
}

#[tokio::test]
async fn block_list_paths_and_ban_addresses_are_checked() {
    let api = start().await;
    assert_eq!(
        api.delete("/dnsbl/rbl/zen.spamhaus.org").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api.delete("/dnsbl/surbl/zen.spamhaus.org").await.0,
        StatusCode::NOT_FOUND
    );
    let (status, list) = api
        .post("/dnsbl/dnsbl/ZEN.spamhaus.org/enable", json!({}))
        .await;
    assert_eq!((status, &list["active"]), (StatusCode::OK, &json!(true)));
    assert_eq!(
        api.get("/whitelist?kind=spam").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(api.delete("/whitelist/x").await.0, StatusCode::BAD_REQUEST);
    assert_eq!(
        api.delete("/bans/not-an-address").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        api.post("/bans", json!({ "ip": "10.0.0.999" })).await.0,
        StatusCode::BAD_REQUEST
    );
    let (status, ban) = api.post("/bans", json!({ "ip": "::ffff:192.0.2.7" })).await;
    assert_eq!(
        (status, &ban["ip"], &ban["expires_at"]),
        (StatusCode::CREATED, &json!("192.0.2.7"), &Value::Null)
    );
    let (status, lifted) = api.delete("/bans/192.0.2.7").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        lifted,
        json!({ "ip": "192.0.2.7", "removed": 1, "failures_cleared": false }),
        "no Redis here"
    );
    assert_eq!(api.delete("/bans/192.0.2.7").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn routes_are_upserted_listed_and_removed_without_ever_showing_a_password() {
    let api = start().await;
    let (status, route) = api
        .post(
            "/routes",
            json!({ "domain": "*.Example.org", "host": "relay.example.net", "port": 2525,
                    "tls": "required", "username": "u", "password": "route-secret-1" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{route}");
    assert_eq!(route["domain"], "*.example.org");
    assert_eq!(route["tls"], "required");
    assert!(route.get("password").is_none(), "{route}");
    let (status, replaced) = api
        .post(
            "/routes",
            json!({ "domain": "*.example.org", "host": "::1", "retries": 3 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(
        (&replaced["host"], &replaced["port"], &replaced["tls"]),
        (&json!("::1"), &json!(25), &json!("optional"))
    );
    let (_, routes) = api.get("/routes").await;
    assert_eq!(routes.as_array().unwrap().len(), 1, "{routes}");
    assert!(!routes.to_string().contains("route-secret-1"));

    let (status, error) = api
        .post(
            "/routes",
            json!({ "domain": "x.example.org", "host": "h.example.org", "port": 0 }),
        )
        .await;
    assert_eq!((status, kind(&error)), (StatusCode::BAD_REQUEST, "invalid"));
    let (status, error) = api
        .post(
            "/routes",
            json!({ "domain": "x.example.org", "host": "h.example.org", "username": "u" }),
        )
        .await;
    assert_eq!((status, kind(&error)), (StatusCode::BAD_REQUEST, "invalid"));

    assert_eq!(
        api.delete("/routes/%2A.example.org").await.0,
        StatusCode::NO_CONTENT
    );
    let (status, error) = api.delete("/routes/%2A.example.org").await;
    assert_eq!((status, kind(&error)), (StatusCode::NOT_FOUND, "not_found"));
}

#[tokio::test]
async fn the_relayer_is_set_shown_and_cleared() {
    let api = start().await;
    let (status, error) = api.get("/relayer").await;
    assert_eq!((status, kind(&error)), (StatusCode::NOT_FOUND, "not_found"));
    let (status, relayer) = api
        .call(
            reqwest::Method::PUT,
            "/relayer",
            Some(
                json!({ "host": "smarthost.example.net", "port": 587, "tls": "required",
                         "username": "u", "password": "relayer-secret-1" }),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{relayer}");
    assert_eq!(relayer["port"], 587);
    let (status, shown) = api.get("/relayer").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["username"], "u");
    assert!(!shown.to_string().contains("relayer-secret-1"), "{shown}");
    assert_eq!(api.delete("/relayer").await.0, StatusCode::NO_CONTENT);
    assert_eq!(api.delete("/relayer").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn dkim_keys_are_generated_for_hosted_domains_only() {
    let api = start().await;
    api.post("/domains", json!({ "name": "example.test" }))
        .await;
    let (status, error) = api.get("/domains/example.test/dkim").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("has no DKIM key"),
        "{error}"
    );

    // No body at all: the default selector.
    let response = api
        .http
        .post(format!("{}/api/v1/domains/example.test/dkim", api.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let record: Value = response.json().await.unwrap();
    assert_eq!(record["txt_name"], "mail._domainkey.example.test");
    assert!(
        record["txt_value"]
            .as_str()
            .unwrap()
            .starts_with("v=DKIM1; k=rsa; p=MII")
    );

    let (status, record) = api
        .post("/domains/example.test/dkim", json!({ "selector": "s2026" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{record}");
    assert_eq!(record["selector"], "s2026");
    assert_eq!(api.get("/domains/example.test/dkim").await.1, record);

    let (status, error) = api
        .post(
            "/domains/example.test/dkim",
            json!({ "selector": "no way" }),
        )
        .await;
    assert_eq!((status, kind(&error)), (StatusCode::BAD_REQUEST, "invalid"));
    let (status, error) = api.post("/domains/unknown.test/dkim", json!({})).await;
    assert_eq!((status, kind(&error)), (StatusCode::NOT_FOUND, "not_found"));
    let (status, error) = api.get("/domains/unknown.test/dkim").await;
    assert_eq!((status, kind(&error)), (StatusCode::NOT_FOUND, "not_found"));
}

/// Queues a message from `sender` to `recipients` (its body need not exist for the API).
async fn enqueue(api: &Api, sender: &str, recipients: &[&str]) -> String {
    use mc_queue::{BodyLocation, Envelope, NewEntry, NewRecipient, Queue};
    let body = format!("body {sender} {recipients:?}");
    let entry = NewEntry {
        body: BodyLocation::whole(
            mc_mailstore::blob::BlobKey::for_content(body.as_bytes()),
            body.len() as u64,
        ),
        envelope: Envelope {
            id: Envelope::new_id(),
            sender: sender.into(),
            client_ip: None,
            client_helo: None,
            auth_user: None,
            dsn_ret: None,
            dsn_envid: None,
            recipients: recipients
                .iter()
                .map(|a| NewRecipient {
                    address: a.to_string(),
                    dsn_notify: None,
                    dsn_orcpt: None,
                })
                .collect(),
            lifetime: std::time::Duration::from_secs(3600),
            junk: false,
        },
    };
    let id = Queue::new(api.db.pool.clone())
        .enqueue(&entry)
        .await
        .unwrap();
    id.to_string()
}

#[tokio::test]
async fn queue_entries_are_listed_shown_retried_removed_and_purged() {
    let api = start().await;
    let first = enqueue(
        &api,
        "alice@example.test",
        &["a@remote.test", "b@other.test"],
    )
    .await;
    let second = enqueue(&api, "", &["c@remote.test"]).await;

    let (status, listed) = api.get("/queue").await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [second.as_str(), first.as_str()], "newest first");
    assert_eq!(listed[1]["recipients"]["queued"], 2);
    assert_eq!(listed[1]["sender"], "alice@example.test");
    let (_, oldest) = api.get("/queue?oldest_first=true&limit=1").await;
    assert_eq!(oldest[0]["id"], first.as_str());
    let (_, by_domain) = api.get("/queue?domain=other.test&state=all").await;
    assert_eq!(by_domain.as_array().unwrap().len(), 1);
    let (_, null_sender) = api.get("/queue?sender=%3C%3E").await;
    assert_eq!(null_sender[0]["id"], second.as_str());
    for bad in [
        "/queue?state=deferred",
        "/queue?limit=0",
        "/queue?limit=10001",
        "/queue?limit=many",
        "/queue/not-a-uuid",
    ] {
        let (status, error) = api.get(bad).await;
        assert_eq!(
            (status, kind(&error)),
            (StatusCode::BAD_REQUEST, "invalid"),
            "{bad}"
        );
    }

    let (status, detail) = api.get(&format!("/queue/{first}")).await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    assert_eq!(detail["recipients"][0]["address"], "a@remote.test");
    assert_eq!(detail["recipients"][0]["state"], "queued");
    assert_eq!(detail["recipients"][0]["in_flight"], false);
    let unknown = "01927f3c-5d2e-7a4b-9c1d-2e3f4a5b6c7d";
    let (status, error) = api.get(&format!("/queue/{unknown}")).await;
    assert_eq!((status, kind(&error)), (StatusCode::NOT_FOUND, "not_found"));

    let (status, retried) = api.post(&format!("/queue/{first}/retry"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    assert_eq!(
        retried,
        json!({ "rescheduled": 0, "already_due": 2, "in_flight": 0 })
    );
    let (status, _) = api
        .post(&format!("/queue/{unknown}/retry"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, retried) = api.post("/queue/retry", json!({})).await;
    assert_eq!(
        (status, &retried["already_due"]),
        (StatusCode::OK, &json!(3))
    );
    let (status, stats) = api.get("/queue/stats").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(stats["queued_recipients"], 3);

    let (status, removed) = api.delete(&format!("/queue/{first}")).await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(
        removed,
        json!({ "entries": 1, "recipients": 2, "undelivered": 2 })
    );
    let (status, error) = api.delete(&format!("/queue/{first}")).await;
    assert_eq!((status, kind(&error)), (StatusCode::NOT_FOUND, "not_found"));
    let (status, _) = api.delete("/queue/nope").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    for refused in [
        json!({}),
        json!({ "confirm": false }),
        json!({ "confirm": true, "everything": true }),
    ] {
        let (status, error) = api.post("/queue/purge", refused.clone()).await;
        assert_eq!(
            (status, kind(&error)),
            (StatusCode::BAD_REQUEST, "invalid"),
            "{refused}"
        );
    }
    assert_eq!(api.get("/queue").await.1.as_array().unwrap().len(), 1);
    let (status, purged) = api
        .post(
            "/queue/purge",
            json!({ "confirm": true, "domain": "remote.test" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{purged}");
    assert_eq!(purged["entries"], 1);
    assert_eq!(api.get("/queue").await.1, json!([]));
}
