//! `GET /api/v1/openapi.json`: ONE document for the whole API, the query
//! side's paths merged with the command API's (the edge sends this GET here).
//!
//! The command API's half is the document it generates, committed as
//! `docs/openapi/command-api.json` (a command-api test keeps the file
//! current), so the query API does not link the command API's code.

use std::sync::LazyLock;

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use paystream_domain::api::{ErrorBody, ErrorDetail, OrderView, PaymentView, RefundView};
use utoipa::OpenApi;

use super::{audit, ledger, merchants};
use super::{
    events, health, jobs, orders, payments, refunds, session, stats, test_merchant, webhooks,
};
use crate::listing::{ListPage, Page};
use crate::startup::QueryState;
use crate::views::{
    Health, History, HistoryEvent, IdempotencyView, JobsStatus, PublicOrderView, PublicPaymentView,
};

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Paystream API",
        description = "Paystream's /api/v1: commands (POST, PUT) and queries (GET). Amounts are integer minor units. Errors: {\"error\": {\"code\", \"description\", \"field\"?}}. Reads by id reflect every command acknowledged before them; `as_of` rebuilds an object from its events."
    ),
    paths(
        health::health,
        orders::get_order,
        orders::get_public,
        orders::history,
        payments::get_payment,
        payments::get_public,
        payments::get_public_original,
        payments::history,
        refunds::get_refund,
        refunds::history,
        orders::list_orders,
        payments::list_payments,
        payments::payment_refunds,
        refunds::list_refunds,
        webhooks::list_deliveries,
        webhooks::get_delivery,
        webhooks::get_config,
        events::feed,
        stats::stats,
        stats::funnel,
        jobs::status,
        test_merchant::test_merchant,
        ledger::balance,
        ledger::entries,
        ledger::trial_balance,
        merchants::list,
        merchants::get_merchant,
        merchants::own_account,
        audit::verify,
        audit::export,
        session::session,
    ),
    components(schemas(
        OrderView,
        PaymentView,
        RefundView,
        PublicOrderView,
        PublicPaymentView,
        History,
        HistoryEvent,
        IdempotencyView,
        Health,
        JobsStatus,
        test_merchant::TestMerchantView,
        ListPage<OrderView>,
        ListPage<PaymentView>,
        ListPage<RefundView>,
        payments::PaymentRefunds,
        webhooks::WebhookLog,
        webhooks::WebhookLogItem,
        webhooks::WebhookDeliveryView,
        webhooks::WebhookAttemptView,
        webhooks::WebhookSettingsView,
        events::Feed,
        events::FeedEvent,
        stats::Stats,
        stats::CurrencyStats,
        stats::DayStats,
        stats::Funnel,
        stats::FunnelStage,
        health::ProjectionHealth,
        ledger::BalanceView,
        ledger::CurrencyBalance,
        ledger::LedgerEntriesPage,
        ledger::LedgerEntryView,
        ledger::PostingView,
        ledger::TrialBalance,
        ledger::AccountBalance,
        ledger::CurrencyTotal,
        merchants::StaffMerchantView,
        Page<merchants::StaffMerchantView>,
        audit::VerifyReport,
        audit::BreakView,
        paystream_domain::api::SessionView,
        ErrorBody,
        ErrorDetail
    ))
)]
pub struct QueryApiDoc;

/// The command API's document, as it generated it.
const COMMAND_API_DOCUMENT: &str = include_str!("../../../docs/openapi/command-api.json");

/// The whole API: query paths, then the command API's (which also brings
/// the security schemes both sides name).
pub fn document() -> utoipa::openapi::OpenApi {
    let command_api: utoipa::openapi::OpenApi = serde_json::from_str(COMMAND_API_DOCUMENT)
        .expect("docs/openapi/command-api.json is the command API's OpenAPI document");
    QueryApiDoc::openapi().merge_from(command_api)
}

pub fn router() -> Router<QueryState> {
    static DOCUMENT: LazyLock<String> =
        LazyLock::new(|| serde_json::to_string(&document()).unwrap_or_else(|_| "{}".to_string()));
    Router::new().route(
        "/api/v1/openapi.json",
        get(|| async { ([(CONTENT_TYPE, "application/json")], DOCUMENT.as_str()).into_response() }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_document_has_both_sides() {
        let document = document();
        let paths = &document.paths.paths;
        for path in [
            "/api/v1/orders",
            "/api/v1/payments",
            "/api/v1/payments/{id}/capture",
            "/api/v1/orders/{id}",
            "/api/v1/payments/{id}/public",
            "/api/v1/payments/public/{id}",
            "/api/v1/refunds/{id}/events",
            "/api/v1/test/jobs/status",
            "/api/v1/test/merchant",
        ] {
            assert!(paths.contains_key(path), "{path} missing");
        }
        let schemes = &document.components.as_ref().unwrap().security_schemes;
        assert!(schemes.contains_key("api_key") && schemes.contains_key("basic"));
    }
}
