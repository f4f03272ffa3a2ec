//! The dashboard: login and logout with the HttpOnly session cookie
//! (nothing is kept in `localStorage`), and each role's pages under
//! `/dashboard`, routed in the browser ([`Route`], yew-router): moving
//! between pages loads no new document and asks for the session once.

use paystream_domain::api::{
    BalanceView, Funnel, History, LedgerEntriesPage, ListPage, Page as ApiPage, PaymentView,
    RefundView, SessionView, StaffMerchantView, Stats, VerifyReport, WebhookDeliveryView,
    WebhookLog, WebhookSettingsView,
};
use paystream_domain::dev::DEV_API_KEY;
use paystream_domain::validation::normalize_checkout_origins;
use web_sys::HtmlInputElement;
use yew::platform::spawn_local;
use yew::prelude::*;
use yew_router::prelude::*;

use super::api;
use crate::checkout::display_amount;

/// While a read is on its way.
fn loading(what: &str) -> Html {
    html! { <p class="loading" aria-live="polite">{ format!("Loading {what}…") }</p> }
}

/// The API's words for what failed, as they are.
fn failure(message: &str) -> Html {
    html! { <p class="field-error" role="alert">{ message.to_owned() }</p> }
}

/// A list with nothing in it yet.
fn empty(text: &str) -> Html {
    html! { <p class="empty">{ text.to_owned() }</p> }
}

/// One read's answer as the page holds it: `None` while it is on its way,
/// else the value or the API's words for what failed.
type Read<T> = Option<Result<T, String>>;

/// A read, shown: loading while it is on its way, the API's words if it
/// failed, else what `render` makes of the answer.
fn shown<T>(read: &Read<T>, what: &str, render: impl FnOnce(&T) -> Html) -> Html {
    match read {
        None => loading(what),
        Some(Err(message)) => failure(message),
        Some(Ok(value)) => render(value),
    }
}

/// A list read: as [`shown`], and `nothing` when `is_empty`.
fn listed<T>(
    read: &Read<T>,
    what: &str,
    is_empty: impl FnOnce(&T) -> bool,
    nothing: &str,
    render: impl FnOnce(&T) -> Html,
) -> Html {
    shown(read, what, |value| {
        if is_empty(value) {
            empty(nothing)
        } else {
            render(value)
        }
    })
}

/// A button's click that copies `text` to the clipboard.
fn copy(text: String) -> Callback<MouseEvent> {
    Callback::from(move |_| {
        if let Some(window) = web_sys::window() {
            let _ = window.navigator().clipboard().write_text(&text);
        }
    })
}

fn go(path: &str) {
    if let Some(window) = web_sys::window() {
        let _ = window.location().set_href(path);
    }
}

fn short(hash: &str) -> String {
    hash.chars().take(12).collect()
}

#[function_component(Login)]
pub fn login() -> Html {
    let email = use_state(String::new);
    let password = use_state(String::new);
    let failure = use_state(|| None::<String>);
    let busy = use_state(|| false);
    let input = |state: &UseStateHandle<String>| {
        let state = state.clone();
        Callback::from(move |event: InputEvent| {
            state.set(event.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let submit = {
        let (email, password, failure, busy) = (
            email.clone(),
            password.clone(),
            failure.clone(),
            busy.clone(),
        );
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            busy.set(true);
            let body = serde_json::json!({"email": *email, "password": *password});
            let (failure, busy) = (failure.clone(), busy.clone());
            spawn_local(async move {
                match api::post::<serde_json::Value>("/api/v1/auth/login", None, &body).await {
                    Ok(_) => go("/dashboard"),
                    Err(message) => {
                        failure.set(Some(message));
                        busy.set(false);
                    }
                }
            });
        })
    };
    html! {
        <main class="login">
            <h1>{ "Paystream dashboard" }</h1>
            <form data-test-id="login-form" onsubmit={submit}>
                <label for="email">{ "Email" }</label>
                <input id="email" type="email" data-test-id="email-input" autocomplete="username"
                    value={(*email).clone()} oninput={input(&email)} />
                <label for="password">{ "Password" }</label>
                <input id="password" type="password" data-test-id="password-input"
                    autocomplete="current-password" value={(*password).clone()} oninput={input(&password)} />
                if let Some(message) = &*failure {
                    <p class="field-error" role="alert">{ message.clone() }</p>
                }
                <button type="submit" data-test-id="login-button" disabled={*busy}>{ "Log in" }</button>
            </form>
        </main>
    }
}

/// The dashboard's pages, by path (any other path under `/dashboard` is
/// the overview).
#[derive(Debug, Clone, PartialEq, Routable)]
pub enum Route {
    /// `/dashboard`: stats, the funnel and the latest transactions (staff
    /// land on the merchants, auditors on the audit).
    #[at("/dashboard")]
    #[not_found]
    Overview,
    #[at("/dashboard/transactions")]
    Transactions,
    /// One payment: its timeline, time travel, capture and refund.
    #[at("/dashboard/payments/:id")]
    Payment { id: String },
    #[at("/dashboard/refunds")]
    Refunds,
    #[at("/dashboard/webhooks")]
    Webhooks,
    /// Balance and ledger entries.
    #[at("/dashboard/balance")]
    Balance,
    /// Staff only.
    #[at("/dashboard/merchants")]
    Merchants,
    /// Staff and auditors.
    #[at("/dashboard/audit")]
    Audit,
    #[at("/dashboard/docs")]
    Docs,
}

/// The dashboard, routed in the browser.
#[function_component(Dashboard)]
pub fn dashboard() -> Html {
    html! { <BrowserRouter><Shell /></BrowserRouter> }
}

/// The session's header and navigation around the current route's page.
#[function_component(Shell)]
fn shell() -> Html {
    let route = use_route::<Route>().unwrap_or(Route::Overview);
    let session = use_state(|| None::<SessionView>);
    {
        let session = session.clone();
        use_effect_with((), move |_| {
            spawn_local(async move {
                match api::get::<SessionView>("/api/v1/auth/session").await {
                    Ok(found) => session.set(Some(found)),
                    Err(_) => go("/login"),
                }
            });
        });
    }
    let logout = Callback::from(|_| {
        spawn_local(async {
            let _ =
                api::post::<serde_json::Value>("/api/v1/auth/logout", None, &serde_json::json!({}))
                    .await;
            go("/login");
        })
    });
    let Some(session) = &*session else {
        return loading("the session");
    };
    let links: Vec<(Route, &str)> = match session.role.as_str() {
        "merchant" => vec![
            (Route::Overview, "Overview"),
            (Route::Transactions, "Transactions"),
            (Route::Refunds, "Refunds"),
            (Route::Webhooks, "Webhooks"),
            (Route::Balance, "Balance"),
            (Route::Docs, "API docs"),
        ],
        "staff" => vec![
            (Route::Merchants, "Merchants"),
            (Route::Audit, "Audit"),
            (Route::Docs, "API docs"),
        ],
        _ => vec![(Route::Audit, "Audit"), (Route::Docs, "API docs")],
    };
    // Staff and auditors land on their own first page.
    let page = match (route, session.role.as_str()) {
        (Route::Overview, "staff") => Route::Merchants,
        (Route::Overview, "auditor") => Route::Audit,
        (route, _) => route,
    };
    html! {
        <div class="dashboard" data-test-id="dashboard">
            <header>
                <Link<Route> to={Route::Overview} classes="brand">{ "Paystream" }</Link<Route>>
                <nav aria-label="Dashboard">
                    { for links.into_iter().map(|(to, label)| {
                        let current = (to == page).then_some("current");
                        html! { <Link<Route> {to} classes={classes!(current)}>{ label }</Link<Route>> }
                    }) }
                    <span class="who">{ format!("{} ({})", session.email, session.role) }</span>
                    <button type="button" class="link" onclick={logout}>{ "Log out" }</button>
                </nav>
            </header>
            { match page {
                Route::Overview => html! { <><Overview /><Transactions /></> },
                Route::Transactions => html! { <Transactions /> },
                Route::Refunds => html! { <Refunds /> },
                Route::Webhooks => html! { <Webhooks /> },
                Route::Balance => html! { <Balance /> },
                // Keyed by id: another payment is a new page, with its own reads.
                Route::Payment { id } => html! { <PaymentDetail key={id.clone()} id={id.clone()} /> },
                Route::Merchants => html! { <Merchants /> },
                Route::Audit => html! { <Audit /> },
                Route::Docs => html! { <Docs /> },
            } }
        </div>
    }
}

/// Rows per page of the lists.
const PAGE_SIZE: i64 = 10;

fn select(state: &UseStateHandle<String>, page: &UseStateHandle<i64>) -> Callback<Event> {
    let (state, page) = (state.clone(), page.clone());
    Callback::from(move |event: Event| {
        state.set(event.target_unchecked_into::<HtmlInputElement>().value());
        page.set(0);
    })
}

#[function_component(Transactions)]
fn transactions() -> Html {
    let status = use_state(String::new);
    let method = use_state(String::new);
    let offset = use_state(|| 0_i64);
    let page = use_state(|| Read::<ListPage<PaymentView>>::None);
    {
        let page = page.clone();
        let query = format!(
            "/api/v1/payments?limit={PAGE_SIZE}&offset={}{}{}",
            *offset,
            if status.is_empty() {
                String::new()
            } else {
                format!("&status={}", *status)
            },
            if method.is_empty() {
                String::new()
            } else {
                format!("&method={}", *method)
            },
        );
        use_effect_with(query, move |query| {
            let query = query.clone();
            page.set(None);
            spawn_local(
                async move { page.set(Some(api::get::<ListPage<PaymentView>>(&query).await)) },
            );
        });
    }
    let body = listed(
        &*page,
        "transactions",
        |page| page.data.is_empty(),
        "No transactions.",
        |page| {
            html! {
                <table data-test-id="transactions-table">
                    <thead><tr>
                        <th scope="col">{ "Payment" }</th><th scope="col">{ "Order" }</th>
                        <th scope="col">{ "Amount" }</th><th scope="col">{ "Method" }</th>
                        <th scope="col">{ "Status" }</th><th scope="col">{ "Created" }</th>
                    </tr></thead>
                    <tbody>
                        { for page.data.iter().map(|payment| html! {
                            <tr data-test-id="transaction-row">
                                <td data-test-id="payment-id">
                                    <Link<Route> to={Route::Payment { id: payment.id.clone() }}>{ payment.id.clone() }</Link<Route>>
                                </td>
                                <td data-test-id="order-id">{ payment.order_id.clone() }</td>
                                <td data-test-id="amount">{ display_amount(payment.amount, &payment.currency) }</td>
                                <td data-test-id="method">{ payment.method.clone() }</td>
                                <td data-test-id="status"><span class={classes!("status", payment.status.clone())}>{ payment.status.clone() }</span></td>
                                <td data-test-id="created-at">{ payment.created_at.clone() }</td>
                            </tr>
                        }) }
                    </tbody>
                </table>
            }
        },
    );
    let total = match &*page {
        Some(Ok(page)) => page.total,
        _ => None,
    };
    let more = matches!(&*page, Some(Ok(page)) if page.has_more);
    let previous = {
        let offset = offset.clone();
        Callback::from(move |_| offset.set((*offset - PAGE_SIZE).max(0)))
    };
    let next = {
        let offset = offset.clone();
        Callback::from(move |_| offset.set(*offset + PAGE_SIZE))
    };
    html! {
        <section>
            <h1>{ "Transactions" }</h1>
            <div class="filters">
                <label for="status-filter">{ "Status" }</label>
                <select id="status-filter" data-test-id="status-filter" onchange={select(&status, &offset)}>
                    { for [("", "Any"), ("pending", "Pending"), ("success", "Success"), ("failed", "Failed")]
                        .into_iter()
                        .map(|(value, label)| html! { <option {value} selected={*status == value}>{ label }</option> }) }
                </select>
                <label for="method-filter">{ "Method" }</label>
                <select id="method-filter" data-test-id="method-filter" onchange={select(&method, &offset)}>
                    { for [("", "Any"), ("upi", "UPI"), ("card", "Card")]
                        .into_iter()
                        .map(|(value, label)| html! { <option {value} selected={*method == value}>{ label }</option> }) }
                </select>
            </div>
            { body }
            <div class="pager">
                <button type="button" disabled={*offset == 0} onclick={previous}>{ "Previous" }</button>
                <span>{ match total {
                    Some(total) => format!("{}–{} of {total}", (*offset + 1).min(total), (*offset + PAGE_SIZE).min(total)),
                    None => String::new(),
                } }</span>
                <button type="button" disabled={!more} onclick={next}>{ "Next" }</button>
            </div>
        </section>
    }
}

#[function_component(Refunds)]
fn refunds() -> Html {
    let page = use_state(|| Read::<ListPage<RefundView>>::None);
    {
        let page = page.clone();
        use_effect_with((), move |_| {
            spawn_local(async move {
                page.set(Some(
                    api::get::<ListPage<RefundView>>("/api/v1/refunds?limit=50").await,
                ))
            });
        });
    }
    let body = listed(
        &*page,
        "refunds",
        |page| page.data.is_empty(),
        "No refunds yet.",
        |page| {
            html! {
                <table data-test-id="refunds-table">
                    <thead><tr>
                        <th scope="col">{ "Refund" }</th><th scope="col">{ "Payment" }</th>
                        <th scope="col">{ "Amount" }</th><th scope="col">{ "Status" }</th>
                        <th scope="col">{ "Reason" }</th><th scope="col">{ "Created" }</th>
                    </tr></thead>
                    <tbody>
                        { for page.data.iter().map(|refund| html! {
                            <tr data-test-id="refund-row">
                                <td>{ refund.id.clone() }</td>
                                <td><Link<Route> to={Route::Payment { id: refund.payment_id.clone() }}>{ refund.payment_id.clone() }</Link<Route>></td>
                                <td>{ display_amount(refund.amount, &refund.currency) }</td>
                                <td>{ refund.status.clone() }</td>
                                <td>{ refund.reason.clone().unwrap_or_default() }</td>
                                <td>{ refund.created_at.clone() }</td>
                            </tr>
                        }) }
                    </tbody>
                </table>
            }
        },
    );
    html! { <section><h1>{ "Refunds" }</h1>{ body }</section> }
}

#[derive(Debug, Clone, PartialEq, Properties)]
struct DetailProps {
    id: String,
}

#[function_component(PaymentDetail)]
fn payment_detail(props: &DetailProps) -> Html {
    let history = use_state(|| Read::<History>::None);
    let at = use_state(|| None::<usize>);
    let as_of = use_state(|| Read::<PaymentView>::None);
    let current = use_state(|| None::<PaymentView>);
    let reload = use_state(|| 0_u32);
    let notice = use_state(|| None::<Result<String, String>>);
    let refund_amount = use_state(String::new);
    let refund_reason = use_state(String::new);
    {
        let (current, id) = (current.clone(), props.id.clone());
        use_effect_with(*reload, move |_| {
            spawn_local(async move {
                current.set(
                    api::get::<PaymentView>(&format!("/api/v1/payments/{id}"))
                        .await
                        .ok(),
                );
            });
        });
    }
    {
        let (history, at, id) = (history.clone(), at.clone(), props.id.clone());
        use_effect_with(*reload, move |_| {
            spawn_local(async move {
                let loaded = api::get::<History>(&format!("/api/v1/payments/{id}/events")).await;
                if let Ok(loaded) = &loaded {
                    at.set(loaded.data.len().checked_sub(1));
                }
                history.set(Some(loaded));
            });
        });
    }
    {
        // The payment as of the chosen event, rebuilt by the API from the events.
        let (as_of, id) = (as_of.clone(), props.id.clone());
        let moment = match (&*history, *at) {
            (Some(Ok(history)), Some(index)) => history
                .data
                .get(index)
                .map(|event| event.recorded_at.clone()),
            _ => None,
        };
        use_effect_with(moment, move |moment| {
            if let Some(moment) = moment.clone() {
                spawn_local(async move {
                    let path = format!(
                        "/api/v1/payments/{id}?as_of={}",
                        js_sys::encode_uri_component(&moment)
                    );
                    as_of.set(Some(api::get::<PaymentView>(&path).await));
                });
            }
        });
    }
    let slide = {
        let at = at.clone();
        Callback::from(move |event: InputEvent| {
            let value = event.target_unchecked_into::<HtmlInputElement>().value();
            at.set(value.parse().ok());
        })
    };
    let capture = {
        let (current, notice, reload, id) = (
            current.clone(),
            notice.clone(),
            reload.clone(),
            props.id.clone(),
        );
        Callback::from(move |_| {
            let Some(payment) = (*current).clone() else {
                return;
            };
            let (notice, reload, id) = (notice.clone(), reload.clone(), id.clone());
            spawn_local(async move {
                let body = serde_json::json!({"amount": payment.amount});
                match api::post::<serde_json::Value>(
                    &format!("/api/v1/payments/{id}/capture"),
                    None,
                    &body,
                )
                .await
                {
                    Ok(_) => notice.set(Some(Ok("Captured".into()))),
                    Err(message) => notice.set(Some(Err(message))),
                }
                reload.set(*reload + 1);
            });
        })
    };
    let refund = {
        let (current, notice, reload, id) = (
            current.clone(),
            notice.clone(),
            reload.clone(),
            props.id.clone(),
        );
        let (amount, reason) = (refund_amount.clone(), refund_reason.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let Some(payment) = (*current).clone() else {
                return;
            };
            let minor = match crate::forms::minor_units(&amount, &payment.currency) {
                Ok(minor) => minor,
                Err(message) => {
                    notice.set(Some(Err(message)));
                    return;
                }
            };
            let mut body = serde_json::json!({"amount": minor});
            if !reason.trim().is_empty() {
                body["reason"] = serde_json::Value::String(reason.trim().to_owned());
            }
            let (notice, reload, id) = (notice.clone(), reload.clone(), id.clone());
            spawn_local(async move {
                match api::post::<RefundView>(
                    &format!("/api/v1/payments/{id}/refunds"),
                    None,
                    &body,
                )
                .await
                {
                    Ok(refund) => notice.set(Some(Ok(format!("Refund {} requested", refund.id)))),
                    Err(message) => notice.set(Some(Err(message))),
                }
                reload.set(*reload + 1);
            });
        })
    };
    let typed = |state: &UseStateHandle<String>| {
        let state = state.clone();
        Callback::from(move |event: InputEvent| {
            state.set(event.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let actions = match &*current {
        Some(payment) if payment.status == "success" => html! {
            <section class="actions" aria-label="Actions">
                <p>{ format!("Now: {} · {} · refunded {}", payment.status,
                    if payment.captured { "captured" } else { "not captured" },
                    display_amount(payment.amount_refunded, &payment.currency)) }</p>
                if !payment.captured {
                    <button type="button" data-test-id="capture-button" onclick={capture}>
                        { format!("Capture {}", display_amount(payment.amount, &payment.currency)) }
                    </button>
                }
                <form class="inline" data-test-id="refund-form" onsubmit={refund}>
                    <label for="refund-amount">{ format!("Refund amount ({})", payment.currency) }</label>
                    <input id="refund-amount" data-test-id="refund-amount-input" inputmode="decimal"
                        placeholder="12.50" value={(*refund_amount).clone()} oninput={typed(&refund_amount)} />
                    <label for="refund-reason">{ "Reason" }</label>
                    <input id="refund-reason" data-test-id="refund-reason-input"
                        value={(*refund_reason).clone()} oninput={typed(&refund_reason)} />
                    <button type="submit" data-test-id="refund-button">{ "Refund" }</button>
                </form>
            </section>
        },
        _ => html! {},
    };
    let notice_html = match &*notice {
        None => html! {},
        Some(Ok(text)) => html! { <p class="notice" role="status">{ text.clone() }</p> },
        Some(Err(text)) => {
            html! { <p class="field-error" role="alert" data-test-id="action-error">{ text.clone() }</p> }
        }
    };
    let body = shown(&*history, "the payment's events", |history| {
        let index = at.unwrap_or(0);
        let last = history.data.len().saturating_sub(1);
        html! {
            <>
                <section class="time-travel" aria-label="Time travel">
                    <label for="as-of">{ format!("As of event {} of {}", index + 1, history.data.len()) }</label>
                    <input id="as-of" type="range" data-test-id="time-travel-slider" min="0"
                        max={last.to_string()} value={index.to_string()} oninput={slide} />
                    { match &*as_of {
                        Some(Ok(payment)) => html! {
                            <p>{ "Status then: " }<strong data-test-id="as-of-status">{ payment.status.clone() }</strong>
                               { format!(" · {}", display_amount(payment.amount, &payment.currency)) }</p>
                        },
                        Some(Err(message)) => failure(message),
                        None => html! {},
                    } }
                </section>
                <ol class="timeline" data-test-id="event-timeline">
                    { for history.data.iter().enumerate().map(|(position, event)| html! {
                        <li data-test-id="timeline-event" class={classes!((position == index).then_some("current"))}>
                            <strong data-test-id="event-type">{ event.event_type.clone() }</strong>
                            <span data-test-id="event-time">{ event.recorded_at.clone() }</span>
                            <span data-test-id="event-actor">{ event.actor.clone() }</span>
                            <code data-test-id="event-hash" title={event.hash.clone()}>{ short(&event.hash) }</code>
                        </li>
                    }) }
                </ol>
            </>
        }
    });
    html! {
        <section>
            <h1>{ "Payment " }<span data-test-id="payment-id">{ props.id.clone() }</span></h1>
            { actions }
            { notice_html }
            { body }
        </section>
    }
}

#[function_component(Overview)]
fn overview() -> Html {
    let stats = use_state(|| Read::<Stats>::None);
    let account = use_state(|| Read::<StaffMerchantView>::None);
    {
        let (stats, account) = (stats.clone(), account.clone());
        use_effect_with((), move |_| {
            spawn_local(async move {
                account.set(Some(
                    api::get::<StaffMerchantView>("/api/v1/merchant").await,
                ));
                stats.set(Some(api::get::<Stats>("/api/v1/stats").await));
            });
        });
    }
    let credentials = match &*account {
        None => html! {},
        Some(Err(message)) => failure(message),
        Some(Ok(account)) => html! {
            <>
                <Credentials api_key={account.api_key.clone()} />
                <CheckoutOrigins origins={account.checkout_origins.clone()} />
            </>
        },
    };
    let cards = shown(&*stats, "statistics", |stats| {
        html! {
            <>
                <div class="cards" data-test-id="stats-container">
                    <div class="card"><span>{ "Total transactions" }</span>
                        <strong data-test-id="total-transactions">{ stats.total_transactions }</strong></div>
                    <div class="card"><span>{ "Total amount (succeeded)" }</span>
                        <strong data-test-id="total-amount">{ display_amount(stats.total_amount, &stats.currency) }</strong></div>
                    <div class="card"><span>{ "Success rate" }</span>
                        <strong data-test-id="success-rate">{ format!("{:.2}%", stats.success_rate) }</strong></div>
                </div>
                { volume_chart(stats) }
            </>
        }
    });
    html! {
        <section>
            <h1>{ "Overview" }</h1>
            { credentials }
            { cards }
            <ConversionFunnel />
        </section>
    }
}

#[derive(Debug, Clone, PartialEq, Properties)]
struct CredentialsProps {
    api_key: String,
}

/// The API key, and the secret on demand: it is stored only as a hash, so
/// "show" means a new pair (`POST /api/v1/merchant/rotate-keys`), shown once
/// here, after a confirmation (the current pair stops working at once).
#[function_component(Credentials)]
fn credentials(props: &CredentialsProps) -> Html {
    let asked = use_state(|| false);
    let rolled = use_state(|| None::<Result<serde_json::Value, String>>);
    let ask = {
        let asked = asked.clone();
        Callback::from(move |_| asked.set(true))
    };
    let cancel = {
        let asked = asked.clone();
        Callback::from(move |_| asked.set(false))
    };
    let roll = {
        let (asked, rolled) = (asked.clone(), rolled.clone());
        Callback::from(move |_| {
            let (asked, rolled) = (asked.clone(), rolled.clone());
            spawn_local(async move {
                let answer = api::post::<serde_json::Value>(
                    "/api/v1/merchant/rotate-keys",
                    None,
                    &serde_json::json!({}),
                )
                .await;
                asked.set(false);
                rolled.set(Some(answer));
            });
        })
    };
    let new_pair = match &*rolled {
        Some(Ok(pair)) => Some((
            pair["api_key"].as_str().unwrap_or_default().to_owned(),
            pair["api_secret"].as_str().unwrap_or_default().to_owned(),
        )),
        _ => None,
    };
    let key = new_pair
        .as_ref()
        .map_or_else(|| props.api_key.clone(), |(key, _)| key.clone());
    html! {
        <div class="card wide" data-test-id="api-credentials">
            <span>{ "API key" }</span>
            <code data-test-id="api-key">{ key }</code>
            <span>{ "API secret" }</span>
            { match new_pair {
                Some((_, secret)) => html! {
                    <p role="status">
                        <code data-test-id="api-secret">{ secret.clone() }</code>
                        <button type="button" data-test-id="copy-api-secret-button" onclick={copy(secret)}>{ "Copy" }</button>
                        <br />{ "Shown only now: copy it. The previous key and secret no longer work." }
                    </p>
                },
                None => html! {
                    <p data-test-id="api-secret">{ "Stored only as a hash, so it cannot be shown again. Get a new key and secret when you need them." }</p>
                },
            } }
            if let Some(Err(message)) = &*rolled { { failure(message) } }
            if *asked {
                <p role="alert">
                    { "The current key and secret stop working at once. " }
                    <button type="button" data-test-id="confirm-roll-keys-button" onclick={roll}>{ "Issue a new pair" }</button>
                    { " " }
                    <button type="button" onclick={cancel}>{ "Cancel" }</button>
                </p>
            } else {
                <p><button type="button" data-test-id="roll-keys-button" onclick={ask}>{ "New key and secret" }</button></p>
            }
        </div>
    }
}

/// What the page reads of `PUT /api/v1/merchant/checkout-origins`'s answer.
#[derive(Debug, serde::Deserialize)]
struct SavedOrigins {
    checkout_origins: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Properties)]
struct CheckoutOriginsProps {
    origins: Vec<String>,
}

/// The sites allowed to embed the checkout (and receive its result), one
/// origin a line, checked in the browser by the domain's own rule before
/// `PUT /api/v1/merchant/checkout-origins`.
#[function_component(CheckoutOrigins)]
fn checkout_origins(props: &CheckoutOriginsProps) -> Html {
    let saved = use_state(|| props.origins.clone());
    let text = use_state(|| props.origins.join("\n"));
    let outcome = use_state(|| None::<Result<(), String>>);
    let edit = {
        let (text, outcome) = (text.clone(), outcome.clone());
        Callback::from(move |event: InputEvent| {
            let area: web_sys::HtmlTextAreaElement = event.target_unchecked_into();
            text.set(area.value());
            outcome.set(None);
        })
    };
    let save = {
        let (text, saved, outcome) = (text.clone(), saved.clone(), outcome.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let lines: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(str::to_owned)
                .collect();
            let origins = match normalize_checkout_origins(&lines) {
                Ok(origins) => origins,
                Err(error) => {
                    outcome.set(Some(Err(error.to_string())));
                    return;
                }
            };
            let (text, saved, outcome) = (text.clone(), saved.clone(), outcome.clone());
            spawn_local(async move {
                let body = serde_json::json!({ "origins": origins });
                match api::put::<SavedOrigins>("/api/v1/merchant/checkout-origins", &body).await {
                    Ok(account) => {
                        text.set(account.checkout_origins.join("\n"));
                        saved.set(account.checkout_origins);
                        outcome.set(Some(Ok(())));
                    }
                    Err(message) => outcome.set(Some(Err(message))),
                }
            });
        })
    };
    html! {
        <div class="card wide" data-test-id="checkout-origins">
            <span>{ "Checkout origins" }</span>
            <p>{ "Pages on these sites may embed your checkout and receive its result. One origin a line, such as https://shop.example." }</p>
            if saved.is_empty() {
                <p class="empty">{ "None yet: the embedded checkout takes payments but cannot tell your page the result." }</p>
            } else {
                <ul>
                    { for saved.iter().map(|origin| html! { <li data-test-id="checkout-origin"><code>{ origin.clone() }</code></li> }) }
                </ul>
            }
            <form onsubmit={save} novalidate=true>
                <label for="checkout-origins-input">{ "Allowed origins" }</label>
                <textarea id="checkout-origins-input" data-test-id="checkout-origins-input" rows="3"
                    value={(*text).clone()} oninput={edit} />
                <button type="submit" data-test-id="save-checkout-origins-button">{ "Save origins" }</button>
            </form>
            { match &*outcome {
                Some(Ok(())) => html! { <p role="status">{ "Saved." }</p> },
                Some(Err(message)) => failure(message),
                None => html! {},
            } }
        </div>
    }
}

/// The periods the funnel offers: days back from today (UTC), `0` for all
/// time.
const FUNNEL_PERIODS: [(u32, &str); 4] = [
    (7, "Last 7 days"),
    (30, "Last 30 days"),
    (90, "Last 90 days"),
    (0, "All time"),
];

/// The UTC day `days_back` days before today, `YYYY-MM-DD`.
fn utc_day(days_back: u32) -> String {
    let now = js_sys::Date::now() - f64::from(days_back) * 86_400_000.0;
    String::from(js_sys::Date::new(&now.into()).to_iso_string())
        .chars()
        .take(10)
        .collect()
}

fn stage_label(stage: &str) -> &'static str {
    match stage {
        "orders_created" => "Orders created",
        "payment_attempted" => "Payment attempted",
        "paid" => "Paid",
        "captured" => "Captured",
        "refunded" => "Refunded",
        _ => "Other",
    }
}

/// What became of the orders created in a chosen period
/// (`GET /api/v1/stats/funnel`): each step's count, its rate against the
/// step it follows, and a bar as wide as its share of the orders created.
#[function_component(ConversionFunnel)]
fn conversion_funnel() -> Html {
    let days = use_state(|| 30_u32);
    let funnel = use_state(|| Read::<Funnel>::None);
    {
        let funnel = funnel.clone();
        use_effect_with(*days, move |days| {
            let path = match *days {
                0 => "/api/v1/stats/funnel".to_owned(),
                days => format!(
                    "/api/v1/stats/funnel?from={}&to={}",
                    utc_day(days - 1),
                    utc_day(0)
                ),
            };
            funnel.set(None);
            spawn_local(async move { funnel.set(Some(api::get::<Funnel>(&path).await)) });
        });
    }
    let choose = {
        let days = days.clone();
        Callback::from(move |event: Event| {
            let value = event.target_unchecked_into::<HtmlInputElement>().value();
            days.set(value.parse().unwrap_or(30));
        })
    };
    let body = listed(
        &*funnel,
        "the funnel",
        |funnel| funnel.stages.first().is_none_or(|stage| stage.count == 0),
        "No orders in this period.",
        |funnel| {
            html! {
                <ol class="funnel" data-test-id="funnel">
                    { for funnel.stages.iter().map(|stage| html! {
                        <li data-test-id="funnel-stage" data-stage={stage.stage.clone()}>
                            <span class="label">{ stage_label(&stage.stage) }</span>
                            <strong data-test-id="funnel-count">{ stage.count }</strong>
                            <span class="rate" data-test-id="funnel-rate">{ match &stage.of {
                                Some(of) => format!("{:.2}% of {}", stage.rate, stage_label(of).to_lowercase()),
                                None => String::new(),
                            } }</span>
                            // An SVG bar: its width is an attribute, not an
                            // inline style, which the page's CSP refuses.
                            <svg class="bar" aria-hidden="true" viewBox="0 0 100 1" preserveAspectRatio="none">
                                <rect width={format!("{:.2}", stage.of_created)} height="1" />
                            </svg>
                        </li>
                    }) }
                </ol>
            }
        },
    );
    let conversion = match &*funnel {
        Some(Ok(funnel)) if funnel.stages.first().is_some_and(|stage| stage.count > 0) => html! {
            <p data-test-id="conversion-rate">{ format!("Conversion (paid ÷ orders created): {:.2}%", funnel.conversion_rate) }</p>
        },
        _ => html! {},
    };
    html! {
        <section class="funnel-section" aria-labelledby="funnel-title">
            <h2 id="funnel-title">{ "Conversion funnel" }</h2>
            <div class="filters">
                <label for="funnel-period">{ "Orders created" }</label>
                <select id="funnel-period" data-test-id="funnel-period" onchange={choose}>
                    { for FUNNEL_PERIODS.iter().map(|(value, label)| html! {
                        <option value={value.to_string()} selected={*days == *value}>{ *label }</option>
                    }) }
                </select>
            </div>
            { body }
            { conversion }
        </section>
    }
}

/// Succeeded volume per day in the stats' currency, as SVG bars drawn here
/// (no chart library).
fn volume_chart(stats: &Stats) -> Html {
    let days: Vec<(String, i64)> = stats
        .per_day
        .iter()
        .filter(|day| day.currency == stats.currency)
        .map(|day| (day.date.to_string(), day.total_amount))
        .collect();
    if days.is_empty() {
        return empty("No volume yet.");
    }
    let most = days
        .iter()
        .map(|(_, amount)| *amount)
        .max()
        .unwrap_or(0)
        .max(1);
    let (width, height, gap) = (600_i64, 160_i64, 4_i64);
    let count = i64::try_from(days.len()).unwrap_or(1);
    let bar = ((width - gap * (count - 1)) / count).clamp(2, 40);
    html! {
        <figure class="chart" data-test-id="volume-chart">
            <svg viewBox={format!("0 0 {width} {height}")} role="img"
                aria-label={format!("Succeeded volume per day, {}", stats.currency)}>
                { for days.iter().enumerate().map(|(index, (date, amount))| {
                    let tall = (amount * (height - 20) / most).max(1);
                    let x = i64::try_from(index).unwrap_or(0) * (bar + gap);
                    html! {
                        <rect x={x.to_string()} y={(height - tall).to_string()} width={bar.to_string()}
                            height={tall.to_string()} fill="#2563eb">
                            <title>{ format!("{date}: {}", display_amount(*amount, &stats.currency)) }</title>
                        </rect>
                    }
                }) }
            </svg>
            <figcaption>{ format!("Succeeded volume per day ({}), {} {}", stats.currency, days.len(),
                if days.len() == 1 { "day" } else { "days" }) }</figcaption>
        </figure>
    }
}

#[function_component(Docs)]
fn docs() -> Html {
    let create_order = format!(
        "curl -X POST https://<paystream>/api/v1/orders \\\n  -H 'X-Api-Key: {DEV_API_KEY}' -H 'X-Api-Secret: <your secret>' \\\n  -H 'Content-Type: application/json' -H 'Idempotency-Key: <unique per order>' \\\n  -d '{{\"amount\": 50000, \"currency\": \"INR\", \"receipt\": \"receipt#1\"}}'"
    );
    let sdk = format!(
        "<script src=\"https://<paystream>/checkout.js\"></script>\n<script>\n  new PaymentGateway({{\n    key: \"{DEV_API_KEY}\",\n    orderId: \"order_…\",  // created by your server\n    onSuccess: (data) => console.log(\"paid\", data.paymentId),\n    onFailure: (data) => console.log(\"failed\", data.description),\n    onClose: () => {{}},\n  }}).open();\n</script>"
    );
    let webhook = "// X-Webhook-Signature: hex HMAC-SHA256 of the exact body, keyed with the\n// whole webhook secret string (whsec_… included).\nconst crypto = require(\"crypto\");\nconst expected = crypto.createHmac(\"sha256\", secret).update(rawBody).digest(\"hex\");\nconst ok = crypto.timingSafeEqual(Buffer.from(expected), Buffer.from(req.headers[\"x-webhook-signature\"]));\n\n// Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature):\n// give the official library the standard_webhooks_secret that\n// GET /api/v1/webhooks/config shows.\nconst { Webhook } = require(\"standardwebhooks\");\nnew Webhook(standardWebhooksSecret).verify(rawBody, req.headers);";
    html! {
        <section class="docs" data-test-id="api-docs">
            <h1>{ "API docs" }</h1>
            <p>{ "The whole API: " }<a href="/api/v1/openapi.json">{ "OpenAPI document" }</a>{ ". Amounts are integers in minor units (paise for INR)." }</p>
            <section data-test-id="section-create-order">
                <h2>{ "Create an order (your server)" }</h2>
                <pre data-test-id="code-snippet-create-order"><code>{ create_order }</code></pre>
            </section>
            <section data-test-id="section-sdk-integration">
                <h2>{ "Open the checkout (your page)" }</h2>
                <pre data-test-id="code-snippet-sdk"><code>{ sdk }</code></pre>
            </section>
            <section data-test-id="section-webhook-verification">
                <h2>{ "Verify webhooks" }</h2>
                <pre data-test-id="code-snippet-webhook"><code>{ webhook }</code></pre>
            </section>
        </section>
    }
}

#[function_component(Merchants)]
fn merchants() -> Html {
    let list = use_state(|| Read::<ApiPage<StaffMerchantView>>::None);
    let reload = use_state(|| 0_u32);
    let name = use_state(String::new);
    let email = use_state(String::new);
    let password = use_state(String::new);
    let created = use_state(|| None::<Result<serde_json::Value, String>>);
    {
        let list = list.clone();
        use_effect_with(*reload, move |_| {
            spawn_local(async move {
                list.set(Some(
                    api::get::<ApiPage<StaffMerchantView>>("/api/v1/merchants?limit=100").await,
                ))
            });
        });
    }
    let input = |state: &UseStateHandle<String>| {
        let state = state.clone();
        Callback::from(move |event: InputEvent| {
            state.set(event.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let create = {
        let (name, email, password, created, reload) = (
            name.clone(),
            email.clone(),
            password.clone(),
            created.clone(),
            reload.clone(),
        );
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let mut body = serde_json::json!({"name": *name, "email": *email});
            if !password.is_empty() {
                body["password"] = serde_json::Value::String((*password).clone());
            }
            let (created, reload) = (created.clone(), reload.clone());
            spawn_local(async move {
                let answer = api::post::<serde_json::Value>("/api/v1/merchants", None, &body).await;
                if answer.is_ok() {
                    reload.set(*reload + 1);
                }
                created.set(Some(answer));
            });
        })
    };
    let act = |id: uuid::Uuid, action: &'static str| {
        let reload = reload.clone();
        Callback::from(move |_| {
            let reload = reload.clone();
            spawn_local(async move {
                let path = format!("/api/v1/merchants/{id}/{action}");
                let _ = api::post::<serde_json::Value>(&path, None, &serde_json::json!({})).await;
                reload.set(*reload + 1);
            });
        })
    };
    let rotate = |id: uuid::Uuid| {
        let (reload, created) = (reload.clone(), created.clone());
        Callback::from(move |_| {
            let (reload, created) = (reload.clone(), created.clone());
            spawn_local(async move {
                let path = format!("/api/v1/merchants/{id}/rotate-keys");
                created.set(Some(
                    api::post::<serde_json::Value>(&path, None, &serde_json::json!({})).await,
                ));
                reload.set(*reload + 1);
            });
        })
    };
    let shown = match &*created {
        None => html! {},
        Some(Err(message)) => failure(message),
        Some(Ok(merchant)) => {
            let text = |key: &str| merchant[key].as_str().unwrap_or_default().to_owned();
            html! {
                <div class="created" data-test-id="created-merchant" role="status">
                    <p>{ "New credentials. The secret is shown only now: copy it." }</p>
                    <p>{ "API key " }<code data-test-id="created-api-key">{ text("api_key") }</code></p>
                    <p>{ "API secret " }<code data-test-id="created-api-secret">{ text("api_secret") }</code>
                        <button type="button" data-test-id="copy-secret-button" onclick={copy(text("api_secret"))}>{ "Copy" }</button></p>
                </div>
            }
        }
    };
    let table = listed(
        &*list,
        "merchants",
        |page| page.data.is_empty(),
        "No merchants.",
        |page| {
            html! {
                <table data-test-id="merchants-table">
                    <thead><tr>
                        <th scope="col">{ "Name" }</th><th scope="col">{ "Email" }</th>
                        <th scope="col">{ "API key" }</th><th scope="col">{ "Status" }</th><th scope="col">{ "Actions" }</th>
                    </tr></thead>
                    <tbody>
                        { for page.data.iter().map(|merchant| html! {
                            <tr data-test-id="merchant-row">
                                <td>{ merchant.name.clone() }</td>
                                <td data-test-id="merchant-email">{ merchant.email.clone() }</td>
                                <td><code>{ merchant.api_key.clone() }</code></td>
                                <td data-test-id="merchant-status">{ merchant.status.clone() }</td>
                                <td>
                                    <button type="button" data-test-id="rotate-keys-button" onclick={rotate(merchant.id)}>{ "Rotate keys" }</button>
                                    if merchant.status == "active" {
                                        <button type="button" data-test-id="suspend-button" onclick={act(merchant.id, "suspend")}>{ "Suspend" }</button>
                                    } else {
                                        <button type="button" data-test-id="reactivate-button" onclick={act(merchant.id, "reactivate")}>{ "Reactivate" }</button>
                                    }
                                </td>
                            </tr>
                        }) }
                    </tbody>
                </table>
            }
        },
    );
    html! {
        <section>
            <h1>{ "Merchants" }</h1>
            <form class="inline" data-test-id="create-merchant-form" onsubmit={create}>
                <label for="merchant-name">{ "Name" }</label>
                <input id="merchant-name" data-test-id="merchant-name-input" value={(*name).clone()} oninput={input(&name)} />
                <label for="merchant-email">{ "Email" }</label>
                <input id="merchant-email" type="email" data-test-id="merchant-email-input" value={(*email).clone()} oninput={input(&email)} />
                <label for="merchant-password">{ "Dashboard password (optional)" }</label>
                <input id="merchant-password" type="password" autocomplete="new-password" data-test-id="merchant-password-input"
                    value={(*password).clone()} oninput={input(&password)} />
                <button type="submit" data-test-id="create-merchant-button">{ "Create merchant" }</button>
            </form>
            { shown }
            { table }
        </section>
    }
}

#[function_component(Audit)]
fn audit() -> Html {
    let report = use_state(|| Read::<VerifyReport>::None);
    let running = use_state(|| false);
    let kind = use_state(|| "payments".to_owned());
    let object = use_state(String::new);
    let history = use_state(|| Read::<History>::None);
    let verify = {
        let (report, running) = (report.clone(), running.clone());
        Callback::from(move |_| {
            running.set(true);
            let (report, running) = (report.clone(), running.clone());
            spawn_local(async move {
                report.set(Some(api::get::<VerifyReport>("/api/v1/audit/verify").await));
                running.set(false);
            });
        })
    };
    let browse = {
        let (kind, object, history) = (kind.clone(), object.clone(), history.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let path = format!(
                "/api/v1/{}/{}/events",
                *kind,
                js_sys::encode_uri_component(object.trim())
            );
            let history = history.clone();
            spawn_local(async move { history.set(Some(api::get::<History>(&path).await)) });
        })
    };
    let choose = {
        let kind = kind.clone();
        Callback::from(move |event: Event| {
            kind.set(event.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let typed = {
        let object = object.clone();
        Callback::from(move |event: InputEvent| {
            object.set(event.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let shown = match &*report {
        None => html! {},
        Some(Err(message)) => failure(message),
        Some(Ok(report)) => html! {
            <div data-test-id="verify-report" role="status">
                <p><strong data-test-id="verify-result">{ if report.ok { "intact" } else if report.complete { "broken" } else { "incomplete" } }</strong>
                   { format!(": {} streams and {} events checked in {} ms, {} breaks", report.streams_checked, report.events_checked, report.duration_ms, report.breaks_total) }</p>
                if !report.breaks.is_empty() {
                    <ul>{ for report.breaks.iter().map(|broken| html! {
                        <li>{ format!("{} at version {}: {}", broken.stream_id, broken.version, broken.kind) }</li>
                    }) }</ul>
                }
            </div>
        },
    };
    let events = match &*history {
        None => html! {},
        Some(Err(message)) => failure(message),
        Some(Ok(history)) => html! {
            <ol class="timeline" data-test-id="object-history">
                { for history.data.iter().map(|event| html! {
                    <li data-test-id="timeline-event">
                        <strong data-test-id="event-type">{ event.event_type.clone() }</strong>
                        <span>{ format!("v{}", event.version) }</span>
                        <span>{ event.recorded_at.clone() }</span>
                        <span>{ event.actor.clone() }</span>
                        <code title={event.hash.clone()}>{ short(&event.hash) }</code>
                    </li>
                }) }
            </ol>
        },
    };
    html! {
        <section>
            <h1>{ "Audit" }</h1>
            <p>{ "Checks every stream's hash chain in the event store." }</p>
            <button type="button" data-test-id="verify-button" disabled={*running} onclick={verify}>
                { if *running { "Verifying…" } else { "Verify the event store" } }
            </button>
            { shown }
            <h2>{ "Any object's history" }</h2>
            <form class="inline" data-test-id="history-form" onsubmit={browse}>
                <label for="object-kind">{ "Object" }</label>
                <select id="object-kind" data-test-id="object-kind" onchange={choose}>
                    { for [("payments", "Payment"), ("orders", "Order"), ("refunds", "Refund")]
                        .into_iter()
                        .map(|(value, label)| html! { <option {value} selected={*kind == value}>{ label }</option> }) }
                </select>
                <label for="object-id">{ "Id" }</label>
                <input id="object-id" data-test-id="object-id-input" placeholder="pay_…" value={(*object).clone()} oninput={typed} />
                <button type="submit" data-test-id="history-button">{ "Show history" }</button>
            </form>
            { events }
        </section>
    }
}

/// Most refreshes of the log while deliveries are pending (3 s apart).
const LOG_REFRESHES: u32 = 100;

#[function_component(Webhooks)]
fn webhooks() -> Html {
    let settings = use_state(|| Read::<WebhookSettingsView>::None);
    let url = use_state(String::new);
    let notice = use_state(|| None::<Result<String, String>>);
    let log = use_state(|| Read::<WebhookLog>::None);
    // (generation, round): a reload starts a new generation; each round
    // of a generation refreshes the log 3 s after the last while a
    // delivery is pending.
    let refresh = use_state(|| (0_u32, 0_u32));
    let detail = use_state(|| Read::<WebhookDeliveryView>::None);
    {
        let (settings, url) = (settings.clone(), url.clone());
        use_effect_with((), move |_| {
            spawn_local(async move {
                let loaded = api::get::<WebhookSettingsView>("/api/v1/webhooks/config").await;
                if let Ok(loaded) = &loaded {
                    url.set(loaded.url.clone().unwrap_or_default());
                }
                settings.set(Some(loaded));
            });
        });
    }
    {
        // The log, again every 3 s while a delivery is pending (bounded).
        let (log, refresh) = (log.clone(), refresh.clone());
        use_effect_with(*refresh, move |&(generation, round)| {
            spawn_local(async move {
                if round > 0 {
                    gloo_timers::future::TimeoutFuture::new(3_000).await;
                }
                let loaded = api::get::<WebhookLog>("/api/v1/webhooks?limit=20").await;
                let pending = matches!(&loaded, Ok(log) if log.data.iter().any(|item| item.status == "pending"));
                log.set(Some(loaded));
                if pending && round < LOG_REFRESHES {
                    refresh.set((generation, round + 1));
                }
            });
        });
    }
    let reload_log = {
        let refresh = refresh.clone();
        move || refresh.set((refresh.0 + 1, 0))
    };
    let save = {
        let (url, notice, settings) = (url.clone(), notice.clone(), settings.clone());
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let body = serde_json::json!({"url": *url});
            let (notice, settings) = (notice.clone(), settings.clone());
            spawn_local(async move {
                match api::put::<serde_json::Value>("/api/v1/webhooks/config", &body).await {
                    Ok(_) => {
                        notice.set(Some(Ok("Webhook settings saved".into())));
                        settings.set(Some(
                            api::get::<WebhookSettingsView>("/api/v1/webhooks/config").await,
                        ));
                    }
                    Err(message) => notice.set(Some(Err(message))),
                }
            });
        })
    };
    let command = |path: &'static str, done: &'static str| {
        let (notice, settings) = (notice.clone(), settings.clone());
        let reload_log = reload_log.clone();
        Callback::from(move |_| {
            let (notice, settings) = (notice.clone(), settings.clone());
            let reload_log = reload_log.clone();
            spawn_local(async move {
                match api::post::<serde_json::Value>(path, None, &serde_json::json!({})).await {
                    Ok(_) => {
                        notice.set(Some(Ok(done.into())));
                        settings.set(Some(
                            api::get::<WebhookSettingsView>("/api/v1/webhooks/config").await,
                        ));
                        reload_log();
                    }
                    Err(message) => notice.set(Some(Err(message))),
                }
            });
        })
    };
    let retry = |id: String| {
        let (notice, reload_log) = (notice.clone(), reload_log.clone());
        Callback::from(move |_| {
            let (notice, reload_log, id) = (notice.clone(), reload_log.clone(), id.clone());
            spawn_local(async move {
                let path = format!("/api/v1/webhooks/{id}/retry");
                match api::post::<serde_json::Value>(&path, None, &serde_json::json!({})).await {
                    Ok(_) => {
                        notice.set(Some(Ok(format!("Retry of {id} scheduled"))));
                        reload_log();
                    }
                    Err(message) => notice.set(Some(Err(message))),
                }
            });
        })
    };
    let open = |id: String| {
        let detail = detail.clone();
        Callback::from(move |_| {
            let (detail, id) = (detail.clone(), id.clone());
            spawn_local(async move {
                detail.set(Some(
                    api::get::<WebhookDeliveryView>(&format!("/api/v1/webhooks/{id}")).await,
                ));
            });
        })
    };
    let input = {
        let url = url.clone();
        Callback::from(move |event: InputEvent| {
            url.set(event.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let config = shown(&*settings, "webhook settings", |current| {
        html! {
            <div data-test-id="webhook-config">
                <form class="inline" data-test-id="webhook-config-form" onsubmit={save}>
                    <label for="webhook-url">{ "Endpoint URL" }</label>
                    <input id="webhook-url" type="url" data-test-id="webhook-url-input" placeholder="https://shop.example/webhooks"
                        value={(*url).clone()} oninput={input} />
                    <button type="submit" data-test-id="save-webhook-button">{ "Save" }</button>
                </form>
                <p>{ if current.enabled { "Enabled" } else { "Disabled" } }
                   { current.disabled_reason.clone().map(|reason| format!(" ({reason})")).unwrap_or_default() }</p>
                <p>{ "Signing secret " }<code data-test-id="webhook-secret">{ current.secret.clone() }</code>
                    <button type="button" data-test-id="regenerate-secret-button"
                        onclick={command("/api/v1/webhooks/regenerate-secret", "A new secret signs from now on (the old one still verifies for a while)")}>{ "Regenerate" }</button>
                    <button type="button" data-test-id="test-webhook-button"
                        onclick={command("/api/v1/webhooks/test", "Test webhook scheduled")}>{ "Send test" }</button></p>
                <p class="hint">{ "For the Standard Webhooks libraries: " }<code>{ current.standard_webhooks_secret.clone() }</code></p>
            </div>
        }
    });
    let notice_html = match &*notice {
        None => html! {},
        Some(Ok(text)) => html! { <p class="notice" role="status">{ text.clone() }</p> },
        Some(Err(text)) => html! { <p class="field-error" role="alert">{ text.clone() }</p> },
    };
    let logs = listed(
        &*log,
        "deliveries",
        |log| log.data.is_empty(),
        "No deliveries yet.",
        |log| {
            html! {
                <table data-test-id="webhook-logs-table">
                    <thead><tr>
                        <th scope="col">{ "Event" }</th><th scope="col">{ "Status" }</th><th scope="col">{ "Attempts" }</th>
                        <th scope="col">{ "Last attempt" }</th><th scope="col">{ "Response" }</th><th scope="col">{ "" }</th>
                    </tr></thead>
                    <tbody>
                        { for log.data.iter().map(|item| html! {
                            <tr data-test-id="webhook-log-item">
                                <td data-test-id="webhook-event"><button type="button" class="link-dark" onclick={open(item.id.clone())}>{ item.event.clone() }</button></td>
                                <td data-test-id="webhook-status">{ item.status.clone() }</td>
                                <td data-test-id="webhook-attempts">{ item.attempts }</td>
                                <td data-test-id="webhook-last-attempt">{ item.last_attempt_at.clone().unwrap_or_else(|| "–".into()) }</td>
                                <td data-test-id="webhook-response-code">{ item.response_code.map_or_else(|| "–".to_owned(), |code| code.to_string()) }</td>
                                <td><button type="button" data-test-id="retry-webhook-button" onclick={retry(item.id.clone())}>{ "Retry" }</button></td>
                            </tr>
                        }) }
                    </tbody>
                </table>
            }
        },
    );
    let attempts = match &*detail {
        None => html! {},
        Some(Err(message)) => failure(message),
        Some(Ok(delivery)) => html! {
            <section data-test-id="webhook-attempts-detail" aria-label="Attempts">
                <h2>{ format!("{} → {}", delivery.event, delivery.url) }</h2>
                <ol>{ for delivery.attempt_log.iter().map(|attempt| html! {
                    <li>{ format!("round {} attempt {} at {}: {} in {} ms", attempt.round, attempt.attempt, attempt.attempted_at,
                        attempt.status_code.map_or_else(|| attempt.error.clone().unwrap_or_else(|| "no answer".into()), |code| code.to_string()),
                        attempt.latency_ms) }
                        if !attempt.response_body_excerpt.is_empty() { <pre>{ attempt.response_body_excerpt.clone() }</pre> }
                    </li>
                }) }</ol>
            </section>
        },
    };
    html! {
        <section>
            <h1>{ "Webhooks" }</h1>
            { config }
            { notice_html }
            <h2>{ "Deliveries" }</h2>
            { logs }
            { attempts }
        </section>
    }
}

#[function_component(Balance)]
fn balance() -> Html {
    let balance = use_state(|| Read::<BalanceView>::None);
    let entries = use_state(|| Read::<LedgerEntriesPage>::None);
    {
        let (balance, entries) = (balance.clone(), entries.clone());
        use_effect_with((), move |_| {
            spawn_local(async move {
                balance.set(Some(api::get::<BalanceView>("/api/v1/balance").await));
                entries.set(Some(
                    api::get::<LedgerEntriesPage>("/api/v1/ledger/entries?limit=50").await,
                ));
            });
        });
    }
    let balances = listed(
        &*balance,
        "the balance",
        |balance| balance.data.is_empty(),
        "No money has moved yet.",
        |balance| {
            html! {
                <div class="cards" data-test-id="balance">
                    { for balance.data.iter().map(|row| html! {
                        <div class="card" data-test-id="balance-currency">
                            <span>{ format!("Balance ({})", row.currency) }</span>
                            <strong data-test-id="balance-amount">{ display_amount(row.balance, &row.currency) }</strong>
                            <span>{ format!("captured {} · refunded {}", display_amount(row.captured, &row.currency),
                                display_amount(row.refunded, &row.currency)) }</span>
                        </div>
                    }) }
                </div>
            }
        },
    );
    let ledger = listed(
        &*entries,
        "ledger entries",
        |page| page.data.is_empty(),
        "No ledger entries yet.",
        |page| {
            html! {
                <table data-test-id="ledger-table">
                    <thead><tr>
                        <th scope="col">{ "Posted" }</th><th scope="col">{ "Kind" }</th><th scope="col">{ "Payment" }</th>
                        <th scope="col">{ "Amount" }</th><th scope="col">{ "Postings" }</th>
                    </tr></thead>
                    <tbody>
                        { for page.data.iter().map(|entry| html! {
                            <tr data-test-id="ledger-entry">
                                <td>{ entry.posted_at.clone() }</td>
                                <td>{ entry.kind.clone() }</td>
                                <td><Link<Route> to={Route::Payment { id: entry.payment_id.clone() }}>{ entry.payment_id.clone() }</Link<Route>></td>
                                <td>{ display_amount(entry.amount, &entry.currency) }</td>
                                <td>{ for entry.postings.iter().map(|posting| html! {
                                    <div>{ format!("{}: {}", posting.account, display_amount(posting.amount, &posting.currency)) }</div>
                                }) }</td>
                            </tr>
                        }) }
                    </tbody>
                </table>
            }
        },
    );
    html! {
        <section>
            <h1>{ "Balance" }</h1>
            { balances }
            <h2>{ "Ledger entries" }</h2>
            { ledger }
        </section>
    }
}
