//! Projection `ledger`: the double-entry ledger.
//!
//! The rules live in the domain ([`paystream_domain::ledger`]): a
//! [`PaymentBook`] per payment decides the entries each event posts. This
//! module keeps the books (`ledger_payments`), the merchants' fee rates
//! (`ledger_merchants`, from `MerchantRegistered`), and writes entries, their
//! two postings each, and the running balances. Entry ids are
//! `{position}-{n}`: the same on every rebuild.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use paystream_domain::ledger::{Entry, PaymentBook};
use paystream_domain::merchant::{MerchantAggregate, MerchantEvent};
use paystream_domain::payment::{PaymentAggregate, PaymentEvent};
use paystream_domain::{Aggregate, DomainEvent};
use paystream_store::RecordedEvent;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::projection::{object_key, ApplyError};

struct Book {
    version: i64,
    book: PaymentBook,
    changed: bool,
}

struct Posted {
    entry_id: String,
    position: i64,
    payment_id: String,
    posted_at: DateTime<Utc>,
    entry: Entry,
    currency: &'static str,
}

fn poison(event: &RecordedEvent, what: impl std::fmt::Display) -> ApplyError {
    ApplyError::Poison(format!("{} v{}: {what}", event.stream_id, event.version))
}

pub async fn apply(conn: &mut PgConnection, events: &[&RecordedEvent]) -> Result<(), ApplyError> {
    let payment_events: Vec<&RecordedEvent> = events
        .iter()
        .copied()
        .filter(|e| e.stream_id.category() == PaymentAggregate::CATEGORY)
        .collect();
    let merchant_events: Vec<&RecordedEvent> = events
        .iter()
        .copied()
        .filter(|e| {
            e.stream_id.category() == MerchantAggregate::CATEGORY
                && e.event_type == "MerchantRegistered"
        })
        .collect();
    if payment_events.is_empty() && merchant_events.is_empty() {
        return Ok(());
    }

    let mut books = load_books(&mut *conn, &payment_events).await?;
    let mut fees = load_fees(&mut *conn, &books, &payment_events).await?;
    let mut new_fees = BTreeMap::new();
    let mut posted = Vec::new();

    // Global order matters across streams only for fee rates (a merchant is
    // registered before its payments); each stream is applied in order.
    for event in events {
        match event.stream_id.category() {
            MerchantAggregate::CATEGORY if event.event_type == "MerchantRegistered" => {
                let registered = MerchantEvent::from_stored(
                    &event.event_type,
                    event.schema_version,
                    event.payload.clone(),
                )
                .map_err(|error| poison(event, error))?;
                if let MerchantEvent::MerchantRegistered(registered) = registered {
                    let merchant = Uuid::from(registered.merchant_id);
                    fees.insert(merchant, registered.fee_bps);
                    new_fees.insert(merchant, registered.fee_bps);
                }
            }
            PaymentAggregate::CATEGORY => {
                post_payment_event(event, &mut books, &fees, &mut posted)?;
            }
            _ => {}
        }
    }

    write_fees(&mut *conn, &new_fees).await?;
    write_books(&mut *conn, &books).await?;
    write_entries(&mut *conn, &posted).await?;
    Ok(())
}

fn post_payment_event(
    event: &RecordedEvent,
    books: &mut HashMap<String, Book>,
    fees: &HashMap<Uuid, u32>,
    posted: &mut Vec<Posted>,
) -> Result<(), ApplyError> {
    let key = object_key(event);
    let version = i64::try_from(event.version).unwrap_or(i64::MAX);
    let known = books.get(key).map_or(0, |book| book.version);
    if version <= known {
        return Ok(()); // applied before
    }
    if version != known + 1 {
        return Err(poison(
            event,
            format!("gap: the ledger's book is at version {known}"),
        ));
    }
    let domain_event = PaymentEvent::from_stored(
        &event.event_type,
        event.schema_version,
        event.payload.clone(),
    )
    .map_err(|error| poison(event, error))?;
    if let PaymentEvent::PaymentCreated(created) = &domain_event {
        books.insert(
            key.to_owned(),
            Book {
                version: 0,
                book: PaymentBook::new(created.merchant_id, created.currency),
                changed: true,
            },
        );
    }
    let Some(book) = books.get_mut(key) else {
        return Err(poison(event, "no PaymentCreated before it"));
    };
    let merchant = Uuid::from(book.book.merchant_id);
    let fee_bps = match &domain_event {
        PaymentEvent::PaymentCaptured(_) => *fees
            .get(&merchant)
            .ok_or_else(|| poison(event, format!("no fee rate known for merchant {merchant}")))?,
        _ => 0,
    };
    let entries = book.book.post(&domain_event, fee_bps);
    book.version = version;
    book.changed = true;
    let currency = book.book.currency.code();
    for (n, entry) in entries.into_iter().enumerate() {
        posted.push(Posted {
            entry_id: format!("{}-{n}", event.position.0),
            position: event.position.0,
            payment_id: key.to_owned(),
            posted_at: event.recorded_at,
            entry,
            currency,
        });
    }
    Ok(())
}

async fn load_books(
    conn: &mut PgConnection,
    events: &[&RecordedEvent],
) -> Result<HashMap<String, Book>, ApplyError> {
    let mut keys: Vec<String> = events.iter().map(|e| object_key(e).to_owned()).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut books = HashMap::with_capacity(keys.len());
    if keys.is_empty() {
        return Ok(books);
    }
    let rows: Vec<(String, i64, serde_json::Value)> = sqlx::query_as(
        "select payment_id, version, book from ledger_payments where payment_id = any($1)",
    )
    .bind(&keys)
    .fetch_all(&mut *conn)
    .await?;
    for (key, version, book) in rows {
        let book = serde_json::from_value(book).map_err(|error| {
            ApplyError::Poison(format!("stored ledger book {key} is unreadable: {error}"))
        })?;
        books.insert(
            key,
            Book {
                version,
                book,
                changed: false,
            },
        );
    }
    Ok(books)
}

/// Fee rates of every merchant owning a loaded book, or creating a payment.
async fn load_fees(
    conn: &mut PgConnection,
    books: &HashMap<String, Book>,
    events: &[&RecordedEvent],
) -> Result<HashMap<Uuid, u32>, ApplyError> {
    let mut merchants: Vec<Uuid> = books
        .values()
        .map(|book| Uuid::from(book.book.merchant_id))
        .chain(events.iter().filter_map(|e| e.metadata.merchant_id))
        .collect();
    merchants.sort_unstable();
    merchants.dedup();
    if merchants.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, i32)> = sqlx::query_as(
        "select merchant_id, fee_bps from ledger_merchants where merchant_id = any($1)",
    )
    .bind(&merchants)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(merchant, fee)| (merchant, u32::try_from(fee).unwrap_or(0)))
        .collect())
}

async fn write_fees(conn: &mut PgConnection, fees: &BTreeMap<Uuid, u32>) -> Result<(), ApplyError> {
    if fees.is_empty() {
        return Ok(());
    }
    let merchants: Vec<Uuid> = fees.keys().copied().collect();
    let rates: Vec<i32> = fees
        .values()
        .map(|fee| i32::try_from(*fee).unwrap_or(i32::MAX))
        .collect();
    sqlx::query(
        "insert into ledger_merchants (merchant_id, fee_bps) \
         select * from unnest($1::uuid[], $2::int4[]) \
         on conflict (merchant_id) do update set fee_bps = excluded.fee_bps",
    )
    .bind(merchants)
    .bind(rates)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn write_books(
    conn: &mut PgConnection,
    books: &HashMap<String, Book>,
) -> Result<(), ApplyError> {
    let mut ids = Vec::new();
    let mut merchants = Vec::new();
    let mut currencies = Vec::new();
    let mut versions = Vec::new();
    let mut states = Vec::new();
    for (id, book) in books.iter().filter(|(_, book)| book.changed) {
        ids.push(id.clone());
        merchants.push(Uuid::from(book.book.merchant_id));
        currencies.push(book.book.currency.code().to_owned());
        versions.push(book.version);
        states.push(
            serde_json::to_string(&book.book)
                .map_err(|error| ApplyError::Poison(format!("book {id}: {error}")))?,
        );
    }
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "insert into ledger_payments (payment_id, merchant_id, currency, version, book) \
         select * from unnest($1::text[], $2::uuid[], $3::text[], $4::int8[], $5::text[]::jsonb[]) \
         on conflict (payment_id) do update set version = excluded.version, book = excluded.book",
    )
    .bind(ids)
    .bind(merchants)
    .bind(currencies)
    .bind(versions)
    .bind(states)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn write_entries(conn: &mut PgConnection, posted: &[Posted]) -> Result<(), ApplyError> {
    if posted.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::new();
    let mut positions = Vec::new();
    let mut kinds = Vec::new();
    let mut merchants = Vec::new();
    let mut payments = Vec::new();
    let mut refunds: Vec<Option<String>> = Vec::new();
    let mut currencies = Vec::new();
    let mut amounts = Vec::new();
    let mut at = Vec::new();

    let mut line_entries = Vec::new();
    let mut lines: Vec<i16> = Vec::new();
    let mut accounts = Vec::new();
    let mut line_merchants: Vec<Option<Uuid>> = Vec::new();
    let mut line_currencies = Vec::new();
    let mut line_amounts = Vec::new();
    let mut line_at = Vec::new();

    let mut balances: BTreeMap<(String, &'static str), i64> = BTreeMap::new();

    for posting in posted {
        let entry = &posting.entry;
        let merchant = entry
            .debit
            .merchant()
            .or(entry.credit.merchant())
            .map(Uuid::from);
        ids.push(posting.entry_id.clone());
        positions.push(posting.position);
        kinds.push(entry.kind.as_str().to_owned());
        merchants.push(merchant.unwrap_or_default());
        payments.push(posting.payment_id.clone());
        refunds.push(entry.refund_id.as_ref().map(ToString::to_string));
        currencies.push(posting.currency.to_owned());
        amounts.push(entry.amount);
        at.push(posting.posted_at);
        for (line, (account, amount)) in (1i16..).zip(entry.postings()) {
            let name = account.to_string();
            *balances
                .entry((name.clone(), posting.currency))
                .or_insert(0) += amount;
            line_entries.push(posting.entry_id.clone());
            lines.push(line);
            accounts.push(name);
            line_merchants.push(account.merchant().map(Uuid::from));
            line_currencies.push(posting.currency.to_owned());
            line_amounts.push(amount);
            line_at.push(posting.posted_at);
        }
    }

    sqlx::query(
        "insert into ledger_entries \
           (entry_id, position, kind, merchant_id, payment_id, refund_id, currency, amount, posted_at) \
         select * from unnest($1::text[], $2::int8[], $3::text[], $4::uuid[], $5::text[], \
                              $6::text[], $7::text[], $8::int8[], $9::timestamptz[])",
    )
    .bind(ids)
    .bind(positions)
    .bind(kinds)
    .bind(merchants)
    .bind(payments)
    .bind(refunds)
    .bind(currencies)
    .bind(amounts)
    .bind(at)
    .execute(&mut *conn)
    .await?;

    sqlx::query(
        "insert into ledger_postings \
           (entry_id, line, account, merchant_id, currency, amount, posted_at) \
         select * from unnest($1::text[], $2::int2[], $3::text[], $4::uuid[], $5::text[], \
                              $6::int8[], $7::timestamptz[])",
    )
    .bind(line_entries)
    .bind(lines)
    .bind(accounts)
    .bind(line_merchants)
    .bind(line_currencies)
    .bind(line_amounts)
    .bind(line_at)
    .execute(&mut *conn)
    .await?;

    let mut balance_accounts = Vec::new();
    let mut balance_currencies = Vec::new();
    let mut balance_deltas = Vec::new();
    for ((account, currency), delta) in balances {
        balance_accounts.push(account);
        balance_currencies.push(currency.to_owned());
        balance_deltas.push(delta);
    }
    sqlx::query(
        "insert into ledger_balances (account, currency, balance) \
         select * from unnest($1::text[], $2::text[], $3::int8[]) \
         on conflict (account, currency) do update set \
           balance = ledger_balances.balance + excluded.balance",
    )
    .bind(balance_accounts)
    .bind(balance_currencies)
    .bind(balance_deltas)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
