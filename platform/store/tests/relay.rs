//! The relay against real PostgreSQL and NATS JetStream.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream;
use paystream_store::relay::{self, Relay, RelayConfig, RelaySignal, StepOutcome};
use paystream_store::{
    EventMetadata, EventStore, ExpectedVersion, NewEvent, PgEventStore, StreamId,
};
use serde_json::json;
use support::{jetstream_at, unique_name, wait_until, NatsServer, TestDatabase};
use uuid::Uuid;

/// A message as the relay left it in JetStream.
#[derive(Debug)]
struct Published {
    subject: String,
    message_id: Uuid,
    position: i64,
}

fn config() -> RelayConfig {
    let name = unique_name("t");
    RelayConfig {
        stream_name: name.to_uppercase(),
        subject_prefix: format!("{name}.events"),
        batch_size: 7, // small, so every test crosses batch boundaries
        ..RelayConfig::default()
    }
}

/// Appends `count` events spread over `streams`, returning their ids in order.
async fn append_events(store: &PgEventStore, streams: &[StreamId], count: usize) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for n in 0..count {
        let stream = &streams[n % streams.len()];
        let version = store.read_stream(stream, 0, 10_000).await.unwrap().len() as u64;
        let event = NewEvent::new("Tested", 1, json!({ "n": n }));
        ids.push(event.event_id);
        store
            .append(
                stream,
                ExpectedVersion::from_version(version),
                vec![event],
                &EventMetadata::default(),
            )
            .await
            .expect("appends succeed whatever NATS is doing");
    }
    ids
}

async fn published(context: &jetstream::Context, config: &RelayConfig) -> Vec<Published> {
    let mut stream = context.get_stream(&config.stream_name).await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut messages = Vec::new();
    for sequence in 1..=last {
        let message = stream.get_raw_message(sequence).await.unwrap();
        let header = |name: &str| message.headers.get(name).unwrap().as_str().to_string();
        messages.push(Published {
            subject: message.subject.to_string(),
            message_id: header("Nats-Msg-Id").parse().unwrap(),
            position: header(relay::HEADER_POSITION).parse().unwrap(),
        });
    }
    messages
}

async fn drain(relay: &mut Relay) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while relay.step().await.unwrap() != StepOutcome::Idle {
        assert!(
            tokio::time::Instant::now() < deadline,
            "relay never went idle"
        );
    }
}

fn assert_exactly_once_in_order(messages: &[Published], ids: &[Uuid]) {
    let mut counts: HashMap<Uuid, usize> = HashMap::new();
    for message in messages {
        *counts.entry(message.message_id).or_default() += 1;
    }
    for id in ids {
        assert_eq!(
            counts.get(id),
            Some(&1),
            "event {id} published {:?} times",
            counts.get(id)
        );
    }
    assert_eq!(messages.len(), ids.len(), "unexpected extra messages");
    assert!(
        messages.windows(2).all(|w| w[0].position < w[1].position),
        "messages out of global order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_in_global_order_once_and_resumes_from_its_checkpoint() {
    let database = TestDatabase::create().await;
    let store = database.store.clone();
    let context = jetstream_at(&support::nats_url()).await;
    let config = config();
    let streams = vec![
        StreamId::new("order", "order_A").unwrap(),
        StreamId::new("payment", "pay_B").unwrap(),
        StreamId::new("webhook", "whd_C").unwrap(),
    ];

    let mut ids = append_events(&store, &streams, 30).await;
    let mut relay = Relay::start(store.clone(), context.clone(), config.clone())
        .await
        .unwrap();
    drain(&mut relay).await;
    let messages = published(&context, &config).await;
    assert_exactly_once_in_order(&messages, &ids);
    for (message, id) in messages.iter().zip(&ids) {
        assert_eq!(
            message.message_id, *id,
            "global log order is append order here"
        );
    }
    let category = |subject: &str| subject.rsplit('.').nth(1).map(str::to_string);
    assert_eq!(category(&messages[0].subject).as_deref(), Some("order"));
    assert_eq!(category(&messages[1].subject).as_deref(), Some("payment"));
    assert_eq!(
        messages[2].subject,
        format!("{}.webhook.Tested", config.subject_prefix)
    );

    // A restarted relay resumes where the checkpoint says.
    ids.extend(append_events(&store, &streams, 10).await);
    let mut restarted = Relay::start(store.clone(), context.clone(), config.clone())
        .await
        .unwrap();
    drain(&mut restarted).await;
    assert_exactly_once_in_order(&published(&context, &config).await, &ids);

    // It crashed after publishing but before saving its checkpoint: the
    // stream's last message wins and nothing is published twice.
    sqlx::query("update relay_checkpoints set position = 0 where name = $1")
        .bind(&config.checkpoint_name)
        .execute(store.pool())
        .await
        .unwrap();
    let mut recovered = Relay::start(store.clone(), context.clone(), config.clone())
        .await
        .unwrap();
    assert_eq!(recovered.position(), restarted.position());
    assert_eq!(recovered.step().await.unwrap(), StepOutcome::Idle);
    ids.extend(append_events(&store, &streams, 3).await);
    drain(&mut recovered).await;
    assert_exactly_once_in_order(&published(&context, &config).await, &ids);

    context.delete_stream(&config.stream_name).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_succeed_while_nats_is_down_and_the_backlog_drains_once() {
    let database = TestDatabase::create().await;
    let store = database.store.clone();
    let mut nats = NatsServer::start().await;
    let context = jetstream_at(&nats.url()).await;
    let config = RelayConfig {
        backoff_max: Duration::from_millis(300),
        ..config()
    };
    tokio::spawn(relay::run(
        store.clone(),
        context.clone(),
        config.clone(),
        RelaySignal::default(),
    ));
    let streams = vec![
        StreamId::new("order", "order_A").unwrap(),
        StreamId::new("payment", "pay_B").unwrap(),
    ];

    let mut ids = append_events(&store, &streams, 20).await;
    wait_until(
        Duration::from_secs(20),
        "the first 20 events in JetStream",
        || async {
            let stream = context.get_stream(&config.stream_name).await.ok()?;
            (stream.cached_info().state.messages >= 20).then_some(())
        },
    )
    .await;

    nats.stop();
    ids.extend(append_events(&store, &streams, 30).await);
    tokio::time::sleep(Duration::from_millis(500)).await; // the relay fails and backs off meanwhile
    nats.restart().await;

    wait_until(
        Duration::from_secs(60),
        "all 50 events in JetStream",
        || async {
            let mut stream = context.get_stream(&config.stream_name).await.ok()?;
            let info = stream.info().await.ok()?;
            (info.state.messages >= 50).then_some(())
        },
    )
    .await;
    // Let a stray duplicate, if the relay were to publish one, arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_exactly_once_in_order(&published(&context, &config).await, &ids);
}
