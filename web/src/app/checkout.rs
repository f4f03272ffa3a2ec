//! The hosted checkout page: order summary, UPI and card forms, then a
//! processing state that follows the payment until it is final, and the
//! success or failure state (with retry). Embedded (`embedded=true`, the
//! SDK's iframe), it posts `payment_success`, `payment_failed` and
//! `close_modal` to the page that embeds it, at that page's origin only, and
//! only when the merchant allowed that origin (the order's
//! `checkout_origins`); otherwise it says on the page why it did not.

use gloo_timers::future::TimeoutFuture;
use paystream_domain::api::{PublicOrderView, PublicPaymentView};
use web_sys::HtmlInputElement;
use yew::platform::spawn_local;
use yew::prelude::*;

use super::api;
use crate::checkout::{
    card_request, close_message, display_amount, message_target, parent_message, upi_request,
    CardForm, FieldError, MessageTarget, Method, Outcome,
};

/// How often a pending payment is polled, and for how long at most.
const POLL_EVERY_MS: u32 = 1_000;
const POLL_AT_MOST: u32 = 180;

#[derive(Debug, Clone, PartialEq, Properties)]
pub struct Props {
    pub order_id: String,
    /// The merchant's publishable key, if the page was given one (the
    /// original design's checkout link has none: the order names its
    /// merchant).
    pub key: String,
    pub embedded: bool,
    /// The embedding page's origin (`location.ancestorOrigins`, else the
    /// referrer's), where messages may go.
    pub parent_origin: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Stage {
    Loading,
    /// The order could not be shown (unknown, already paid, network).
    Unavailable(String),
    Form,
    Processing,
    Done(Outcome),
    /// The payment could not be created or followed: the API's words.
    Error(String),
}

/// Where this checkout may post (the order's merchant's origins decide).
fn target(props: &Props, order: Option<&PublicOrderView>) -> MessageTarget {
    let allowed = order.map_or(&[][..], |order| &order.checkout_origins[..]);
    message_target(props.embedded, props.parent_origin.as_deref(), allowed)
}

fn post_to_parent(target: &MessageTarget, message: &serde_json::Value) {
    let MessageTarget::Parent(origin) = target else {
        return;
    };
    let Some(parent) = web_sys::window().and_then(|window| window.parent().ok().flatten()) else {
        return;
    };
    if let Ok(value) = js_sys::JSON::parse(&message.to_string()) {
        let _ = parent.post_message(&value, origin);
    }
}

fn today() -> (i32, u32) {
    let now = js_sys::Date::new_0();
    (now.get_full_year() as i32, now.get_month() + 1)
}

fn text_input(state: &UseStateHandle<String>) -> Callback<InputEvent> {
    let state = state.clone();
    Callback::from(move |event: InputEvent| {
        state.set(event.target_unchecked_into::<HtmlInputElement>().value());
    })
}

#[function_component(Checkout)]
pub fn checkout(props: &Props) -> Html {
    let order = use_state(|| None::<PublicOrderView>);
    let stage = use_state(|| Stage::Loading);
    let method = use_state(|| Method::Upi);
    let vpa = use_state(String::new);
    let number = use_state(String::new);
    let expiry = use_state(String::new);
    let cvv = use_state(String::new);
    let holder = use_state(String::new);
    let invalid = use_state(|| None::<FieldError>);

    {
        let (order, stage, order_id) = (order.clone(), stage.clone(), props.order_id.clone());
        use_effect_with((), move |_| {
            spawn_local(async move {
                if order_id.is_empty() {
                    stage.set(Stage::Unavailable("No order_id was given".into()));
                    return;
                }
                match api::get::<PublicOrderView>(&format!("/api/v1/orders/{order_id}/public"))
                    .await
                {
                    Ok(loaded) if loaded.status == "paid" => {
                        order.set(Some(loaded));
                        stage.set(Stage::Unavailable("This order is already paid".into()));
                    }
                    Ok(loaded) => {
                        order.set(Some(loaded));
                        stage.set(Stage::Form);
                    }
                    Err(failure) => stage.set(Stage::Unavailable(failure)),
                }
            });
        });
    }

    let pay = {
        let (stage, invalid, method) = (stage.clone(), invalid.clone(), method.clone());
        let (vpa, number, expiry, cvv, holder) = (
            vpa.clone(),
            number.clone(),
            expiry.clone(),
            cvv.clone(),
            holder.clone(),
        );
        let props = props.clone();
        let order = order.clone();
        Callback::from(move |event: SubmitEvent| {
            event.prevent_default();
            let (year, month) = today();
            let body = match *method {
                Method::Upi => upi_request(&props.order_id, &vpa),
                Method::Card => card_request(
                    &props.order_id,
                    &CardForm {
                        number: (*number).clone(),
                        expiry: (*expiry).clone(),
                        cvv: (*cvv).clone(),
                        holder_name: (*holder).clone(),
                    },
                    year,
                    month,
                ),
            };
            let body = match body {
                Ok(body) => body,
                Err(error) => {
                    invalid.set(Some(error));
                    return;
                }
            };
            invalid.set(None);
            stage.set(Stage::Processing);
            let (stage, props) = (stage.clone(), props.clone());
            let target = target(&props, (*order).as_ref());
            spawn_local(async move {
                let key = Some(props.key.as_str()).filter(|key| !key.is_empty());
                let created =
                    api::post::<PublicPaymentView>("/api/v1/payments/public", key, &body).await;
                let payment = match created {
                    Ok(payment) => payment,
                    Err(failure) => {
                        stage.set(Stage::Error(failure));
                        return;
                    }
                };
                let mut outcome = Outcome::of(&payment);
                let mut polls = 0;
                while outcome == Outcome::Pending && polls < POLL_AT_MOST {
                    TimeoutFuture::new(POLL_EVERY_MS).await;
                    polls += 1;
                    if let Ok(now) = api::get::<PublicPaymentView>(&format!(
                        "/api/v1/payments/{}/public",
                        payment.id
                    ))
                    .await
                    {
                        outcome = Outcome::of(&now);
                    }
                }
                if outcome == Outcome::Pending {
                    stage.set(Stage::Error(format!(
                        "Payment {} is still being processed; check the merchant's page later",
                        payment.id
                    )));
                    return;
                }
                if let Some(message) = parent_message(&outcome) {
                    post_to_parent(&target, &message);
                }
                stage.set(Stage::Done(outcome));
            });
        })
    };

    let retry = {
        let stage = stage.clone();
        Callback::from(move |_| stage.set(Stage::Form))
    };
    let target = target(props, (*order).as_ref());
    let close = {
        let target = target.clone();
        Callback::from(move |_| post_to_parent(&target, &close_message()))
    };
    let refused = match (&target, &*stage) {
        (MessageTarget::Refused(reason), Stage::Done(_)) => html! {
            <p class="embed-refused" data-test-id="embed-refused" role="note">{ reason.clone() }</p>
        },
        _ => html! {},
    };
    let choose = |chosen: Method| {
        let (method, invalid) = (method.clone(), invalid.clone());
        Callback::from(move |_| {
            method.set(chosen);
            invalid.set(None);
        })
    };
    let field_error = |field: &'static str| -> Html {
        match &*invalid {
            Some(error) if error.field == field => html! {
                <p class="field-error" role="alert" id={format!("{field}-error")}>{ error.message.clone() }</p>
            },
            _ => html! {},
        }
    };

    let summary = match &*order {
        Some(order) => html! {
            <section class="order-summary" data-test-id="order-summary" aria-label="Order summary">
                <p class="amount" data-test-id="order-amount">{ display_amount(order.amount, &order.currency) }</p>
                <p class="order">{ "Order " }<span data-test-id="order-id">{ order.id.clone() }</span></p>
            </section>
        },
        None => html! {},
    };

    let body = match &*stage {
        Stage::Loading => {
            html! { <p class="loading" aria-live="polite">{ "Loading the order…" }</p> }
        }
        Stage::Unavailable(reason) => html! {
            <div class="error-state" data-test-id="error-state" role="alert">
                <p data-test-id="error-message">{ reason.clone() }</p>
            </div>
        },
        Stage::Form => html! {
            <>
                <div class="payment-methods" data-test-id="payment-methods" role="tablist" aria-label="Payment method">
                    <button type="button" role="tab" data-test-id="method-upi"
                        aria-selected={(*method == Method::Upi).to_string()}
                        class={classes!((*method == Method::Upi).then_some("selected"))}
                        onclick={choose(Method::Upi)}>{ "UPI" }</button>
                    <button type="button" role="tab" data-test-id="method-card"
                        aria-selected={(*method == Method::Card).to_string()}
                        class={classes!((*method == Method::Card).then_some("selected"))}
                        onclick={choose(Method::Card)}>{ "Card" }</button>
                </div>
                if *method == Method::Upi {
                    <form data-test-id="upi-form" onsubmit={pay.clone()} novalidate=true>
                        <label for="vpa">{ "UPI ID" }</label>
                        <input id="vpa" data-test-id="vpa-input" name="vpa" autocomplete="off"
                            placeholder="name@bank" value={(*vpa).clone()} oninput={text_input(&vpa)} />
                        { field_error("vpa") }
                        <button type="submit" data-test-id="pay-button">{ "Pay" }</button>
                    </form>
                } else {
                    <form data-test-id="card-form" onsubmit={pay.clone()} novalidate=true>
                        <label for="card-number">{ "Card number" }</label>
                        <input id="card-number" data-test-id="card-number-input" inputmode="numeric"
                            autocomplete="cc-number" placeholder="4111 1111 1111 1111"
                            value={(*number).clone()} oninput={text_input(&number)} />
                        { field_error("card_number") }
                        <div class="row">
                            <div>
                                <label for="expiry">{ "Expiry (MM/YY)" }</label>
                                <input id="expiry" data-test-id="expiry-input" autocomplete="cc-exp"
                                    placeholder="MM/YY" value={(*expiry).clone()} oninput={text_input(&expiry)} />
                                { field_error("expiry") }
                            </div>
                            <div>
                                <label for="cvv">{ "CVV" }</label>
                                <input id="cvv" data-test-id="cvv-input" inputmode="numeric" type="password"
                                    autocomplete="cc-csc" value={(*cvv).clone()} oninput={text_input(&cvv)} />
                                { field_error("cvv") }
                            </div>
                        </div>
                        <label for="holder">{ "Name on card" }</label>
                        <input id="holder" data-test-id="cardholder-name-input" autocomplete="cc-name"
                            value={(*holder).clone()} oninput={text_input(&holder)} />
                        { field_error("holder_name") }
                        <button type="submit" data-test-id="pay-button">{ "Pay" }</button>
                    </form>
                }
            </>
        },
        Stage::Processing => html! {
            <div class="processing-state" data-test-id="processing-state" aria-live="polite">
                <div class="spinner" aria-hidden="true"></div>
                <p data-test-id="processing-message">{ "Processing your payment…" }</p>
            </div>
        },
        Stage::Done(Outcome::Succeeded { payment_id }) => html! {
            <div class="success-state" data-test-id="success-state" role="status">
                <p data-test-id="success-message">{ "Payment successful" }</p>
                <p class="payment-id">{ "Payment " }<span data-test-id="payment-id">{ payment_id.clone() }</span></p>
            </div>
        },
        Stage::Done(Outcome::Failed { description, .. }) | Stage::Error(description) => html! {
            <div class="error-state" data-test-id="error-state" role="alert">
                <p data-test-id="error-message">{ description.clone() }</p>
                <button type="button" data-test-id="retry-button" onclick={retry}>{ "Try again" }</button>
            </div>
        },
        Stage::Done(Outcome::Pending) => html! {},
    };

    html! {
        <div class="checkout-container" data-test-id="checkout-container">
            <header>
                <h1>{ "Pay" }</h1>
                if props.embedded {
                    <button type="button" class="close" aria-label="Close" onclick={close}>{ "×" }</button>
                }
            </header>
            { summary }
            { body }
            { refused }
        </div>
    }
}
