//! The OpenAPI 3.1 document of the admin API, generated from the handlers and types themselves so
//! it cannot drift from the code. Served unauthenticated at `/openapi.json`.

use crate::api::*;
use crate::error::{ErrorBody, ErrorDetail};
use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "mailcluster admin API", description = "Manage domains, accounts, aliases, distribution lists, IP ranges, routes, the relayer, DKIM keys, the anti-spam settings and lists, and bans; inspect and manage the delivery queue. Every /api/v1 route needs `Authorization: Bearer <token>`."),
    paths(
        list_domains, create_domain, show_domain, update_domain, remove_domain,
        add_domain_alias, remove_domain_alias, set_catch_all, clear_catch_all,
        list_accounts, create_account, show_account, update_account, remove_account, unlock_account,
        list_aliases, create_alias, show_alias, update_alias, remove_alias,
        list_lists, create_list, show_list, update_list, remove_list, add_list_member, remove_list_member,
        list_ip_ranges, create_ip_range, show_ip_range, remove_ip_range,
        list_routes, set_route, remove_route, show_relayer, set_relayer, clear_relayer,
        generate_dkim, show_dkim,
        list_queue, show_queue_entry, retry_queue_entry, retry_queue, remove_queue_entry,
        purge_queue, queue_stats,
        list_antispam, set_antispam, reset_antispam,
        list_whitelist, add_whitelist, remove_whitelist,
        list_dnsbl, add_dnsbl, remove_dnsbl, enable_dnsbl, disable_dnsbl,
        list_incoming_relays, add_incoming_relay, remove_incoming_relay,
        list_bans, add_ban, remove_ban,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
