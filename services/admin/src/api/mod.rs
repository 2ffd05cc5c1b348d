//! The HTTP API: routes, the JSON body extractor, bearer authentication.

mod accounts;
mod aliases;
mod antispam;
mod bans;
mod delivery;
mod domains;
mod ip_ranges;
mod lists;
mod queue;

use crate::error::ApiError;
use crate::metrics::ApiMetrics;
use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
use mc_directory::Directory;
use mc_policy::{Bans, DeliverySettings, DnsBlacklists, IncomingRelays, IpRanges, Whitelist};
use mc_queue::Queue;
use mc_types::Secret;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

pub(crate) use accounts::*;
pub(crate) use aliases::*;
pub(crate) use antispam::*;
pub(crate) use bans::*;
pub(crate) use delivery::*;
pub(crate) use domains::*;
pub(crate) use ip_ranges::*;
pub(crate) use lists::*;
pub(crate) use queue::*;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Where directory changes are announced (`mc_directory::CHANGES_CHANNEL`), if configured.
    pub redis: Option<mc_runtime::stores::RedisStore>,
    pub directory: Directory,
    pub ip_ranges: IpRanges,
    /// Routes, the relayer and DKIM keys.
    pub delivery: DeliverySettings,
    /// The delivery queue (administration only: listing, retries, removals).
    pub queue: Queue,
    /// The anti-spam knobs (`mc_policy::AntispamSettings` works on the pool itself).
    pub pool: sqlx::PgPool,
    pub whitelist: Whitelist,
    pub blacklists: DnsBlacklists,
    pub incoming_relays: IncomingRelays,
    pub bans: Bans,
    pub token: Arc<Secret<String>>,
    pub metrics: ApiMetrics,
}

/// A JSON request body; malformed or unexpected bodies become a 400 in our error format.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(ApiError::invalid(rejection.body_text())),
        }
    }
}

/// A JSON request body that may be left out (no `Content-Type`); a malformed one is still a 400.
impl<S: Send + Sync, T: DeserializeOwned> axum::extract::OptionalFromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        match <axum::Json<T> as axum::extract::OptionalFromRequest<S>>::from_request(request, state)
            .await
        {
            Ok(value) => Ok(value.map(|axum::Json(value)| Body(value))),
            Err(rejection) => Err(ApiError::invalid(rejection.body_text())),
        }
    }
}

/// A query string; a malformed one becomes a 400 in our error format.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => Err(ApiError::invalid(rejection.body_text())),
        }
    }
}

/// Path parameters; a malformed one (e.g. invalid percent-encoding) becomes a 400 in our format.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => Err(ApiError::invalid(rejection.body_text())),
        }
    }
}

/// The API router (without the ops endpoint, which runs on its own port).
pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    let api = Router::new()
        .route("/domains", get(list_domains).post(create_domain))
        .route(
            "/domains/{domain}",
            get(show_domain).patch(update_domain).delete(remove_domain),
        )
        .route("/domains/{domain}/aliases", post(add_domain_alias))
        .route(
            "/domains/{domain}/aliases/{alias}",
            axum::routing::delete(remove_domain_alias),
        )
        .route(
            "/domains/{domain}/catch-all",
            put(set_catch_all).delete(clear_catch_all),
        )
        .route("/accounts", get(list_accounts).post(create_account))
        .route(
            "/accounts/{address}",
            get(show_account)
                .patch(update_account)
                .delete(remove_account),
        )
        .route("/accounts/{address}/unlock", post(unlock_account))
        .route("/aliases", get(list_aliases).post(create_alias))
        .route(
            "/aliases/{address}",
            get(show_alias).patch(update_alias).delete(remove_alias),
        )
        .route("/lists", get(list_lists).post(create_list))
        .route(
            "/lists/{address}",
            get(show_list).patch(update_list).delete(remove_list),
        )
        .route("/lists/{address}/members", post(add_list_member))
        .route(
            "/lists/{address}/members/{member}",
            axum::routing::delete(remove_list_member),
        )
        .route("/ip-ranges", get(list_ip_ranges).post(create_ip_range))
        .route(
            "/ip-ranges/{name}",
            get(show_ip_range).delete(remove_ip_range),
        )
        .route("/routes", get(list_routes).post(set_route))
        .route("/routes/{domain}", axum::routing::delete(remove_route))
        .route(
            "/relayer",
            get(show_relayer).put(set_relayer).delete(clear_relayer),
        )
        .route("/domains/{domain}/dkim", get(show_dkim).post(generate_dkim))
        .route("/antispam", get(list_antispam))
        .route("/antispam/{name}", put(set_antispam).delete(reset_antispam))
        .route("/whitelist", get(list_whitelist).post(add_whitelist))
        .route("/whitelist/{id}", axum::routing::delete(remove_whitelist))
        .route("/dnsbl", get(list_dnsbl).post(add_dnsbl))
        .route("/dnsbl/{kind}/{zone}", axum::routing::delete(remove_dnsbl))
        .route("/dnsbl/{kind}/{zone}/enable", post(enable_dnsbl))
        .route("/dnsbl/{kind}/{zone}/disable", post(disable_dnsbl))
        .route(
            "/incoming-relays",
            get(list_incoming_relays).post(add_incoming_relay),
        )
        .route(
            "/incoming-relays/{name}",
            axum::routing::delete(remove_incoming_relay),
        )
        .route("/bans", get(list_bans).post(add_ban))
        .route("/bans/{ip}", axum::routing::delete(remove_ban))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            announce_changes,
        ))
        // After the announcing layer: queue changes concern no cache.
        .route("/queue", get(list_queue))
        .route("/queue/stats", get(queue_stats))
        .route("/queue/retry", post(retry_queue))
        .route("/queue/purge", post(purge_queue))
        .route(
            "/queue/{id}",
            get(show_queue_entry).delete(remove_queue_entry),
        )
        .route("/queue/{id}/retry", post(retry_queue_entry))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .nest("/api/v1", api)
        .route("/openapi.json", get(crate::openapi::document))
        .route("/api/v1/openapi.json", get(crate::openapi::document))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_metrics,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or("");
    if !constant_time_eq(presented.as_bytes(), state.token.expose().as_bytes()) {
        state.metrics.auth_failures.inc();
        return Err(ApiError::unauthorized());
    }
    Ok(next.run(request).await)
}

/// After every successful change (any method but GET), tells the cluster that the directory or
/// policy changed, so that caches (smtp-ingress) drop their answers now rather than at expiry.
async fn announce_changes(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let changes = request.method() != axum::http::Method::GET;
    let response = next.run(request).await;
    if changes
        && response.status().is_success()
        && let Some(redis) = &state.redis
    {
        // Awaited, so that when the client hears the answer every cache has heard the notice.
        if let Err(error) = redis
            .publish(mc_directory::CHANGES_CHANNEL, "changed")
            .await
        {
            tracing::warn!(%error, "directory change not announced; caches expire on their own");
        }
    }
    response
}

async fn record_metrics(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    // Only the methods the API serves become label values: arbitrary method names from
    // unauthenticated clients must not create new time series.
    let method = match request.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE") => m.to_string(),
        _ => "other".to_string(),
    };
    let started = Instant::now();
    // One span per request (exported over OTLP when configured), named by the route template.
    let span = tracing::info_span!("admin.request", method = %method, route = %route, status = tracing::field::Empty);
    let response = next.run(request).instrument(span.clone()).await;
    span.record("status", response.status().as_u16());
    state.metrics.observe(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Compares without an early exit, so response time does not reveal a matching prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut difference = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        difference |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    difference == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn constant_time_eq_matches_only_identical_tokens() {
        assert!(super::constant_time_eq(b"abc", b"abc"));
        assert!(!super::constant_time_eq(b"abc", b"abd"));
        assert!(!super::constant_time_eq(b"abc", b"abcd"));
        assert!(!super::constant_time_eq(b"", b"a"));
    }
}
