//! The event store contract against PostgreSQL, plus what only PostgreSQL has.

mod store_contract;
mod support;

use paystream_store::{
    EventMetadata, EventStore, ExpectedVersion, NewEvent, PgEventStore, Position, StoreError,
    StreamId,
};
use sqlx::{Connection, Executor, PgConnection};
use store_contract::{Harness, HeldAppend, Tamper};
use support::TestDatabase;

struct Postgres(TestDatabase);

struct HeldTransaction(PgConnection);

impl HeldAppend for HeldTransaction {
    async fn commit(mut self) {
        self.0.execute("commit").await.expect("commit held append");
    }
}

impl Harness for Postgres {
    type Store = PgEventStore;
    type Held = HeldTransaction;

    async fn create() -> Self {
        Postgres(TestDatabase::create().await)
    }

    fn store(&self) -> PgEventStore {
        self.0.store.clone()
    }

    async fn another_store(&self) -> PgEventStore {
        PgEventStore::connect(&self.0.url, 8).await.unwrap()
    }

    async fn hold_append(&self, stream: &StreamId, events: Vec<NewEvent>) -> HeldTransaction {
        let mut connection = self.0.connection().await;
        connection.execute("begin").await.unwrap();
        PgEventStore::append_in(
            &mut connection,
            0,
            stream,
            ExpectedVersion::NoStream,
            &events,
            &store_contract::metadata(),
        )
        .await
        .unwrap();
        HeldTransaction(connection)
    }

    async fn tamper(&self, tamper: Tamper) {
        // An attacker with the owner's rights: switch the append-only trigger off.
        let mut connection = self.0.connection().await;
        connection
            .execute("alter table events disable trigger events_append_only")
            .await
            .unwrap();
        match tamper {
            Tamper::ChangePayload { stream, version } => {
                sqlx::query(
                    "update events set payload = jsonb_set(payload, '{amount}', '1') \
                     where stream_id = $1 and version = $2",
                )
                .bind(stream.as_str())
                .bind(version as i64)
                .execute(&mut connection)
                .await
                .unwrap();
            }
            Tamper::Delete { stream, version } => {
                sqlx::query("delete from events where stream_id = $1 and version = $2")
                    .bind(stream.as_str())
                    .bind(version as i64)
                    .execute(&mut connection)
                    .await
                    .unwrap();
            }
            Tamper::SwapPayloads { stream, a, b } => {
                sqlx::query(
                    "update events e set payload = o.payload from events o \
                     where e.stream_id = $1 and o.stream_id = $1 \
                       and ((e.version = $2 and o.version = $3) or (e.version = $3 and o.version = $2))",
                )
                .bind(stream.as_str())
                .bind(a as i64)
                .bind(b as i64)
                .execute(&mut connection)
                .await
                .unwrap();
            }
        }
        connection
            .execute("alter table events enable trigger events_append_only")
            .await
            .unwrap();
    }
}

store_contract_tests!(Postgres);

#[tokio::test]
async fn stored_events_cannot_be_updated_or_deleted() {
    let database = TestDatabase::create().await;
    let stream = store_contract::stream("order");
    use paystream_store::EventStore;
    database
        .store
        .append(
            &stream,
            ExpectedVersion::NoStream,
            vec![store_contract::event(1)],
            &EventMetadata::default(),
        )
        .await
        .unwrap();
    let mut connection = PgConnection::connect(&database.url).await.unwrap();
    for statement in ["update events set payload = '{}'", "delete from events"] {
        let error = connection.execute(statement).await.unwrap_err();
        assert!(
            error.to_string().contains("append-only"),
            "{statement}: {error}"
        );
    }
}

/// After a database restart cuts every connection, each dead pooled
/// connection fails at most one use and is then discarded; connections idle
/// for a while are pinged and replaced before anyone sees them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_connections_are_replaced_after_the_database_cuts_them() {
    let database = TestDatabase::create().await;
    let store = PgEventStore::connect(&database.url, 4).await.unwrap();
    // Four connections in the pool.
    futures::future::join_all((0..4).map(|_| async {
        let mut connection = store.pool().acquire().await.unwrap();
        connection.execute("select pg_sleep(0.05)").await.unwrap();
    }))
    .await;
    let cut = || async {
        database
            .connection()
            .await
            .execute(
                "select pg_terminate_backend(pid) from pg_stat_activity \
                 where datname = current_database() and pid <> pg_backend_pid() \
                 and backend_type = 'client backend' and usename = current_user",
            )
            .await
            .unwrap();
    };

    // Used right away: each dead connection may fail once, no more.
    cut().await;
    let mut failures = 0;
    let mut ok = 0;
    for _ in 0..20 {
        match store.read_all(Position::START, 10).await {
            Ok(_) => ok += 1,
            Err(_) => failures += 1,
        }
    }
    assert!(failures <= 4, "{failures} failures");
    assert!(ok >= 16, "{ok} successes");

    // Idle past the ping threshold: nobody sees a dead connection.
    futures::future::join_all((0..4).map(|_| async {
        let mut connection = store.pool().acquire().await.unwrap();
        connection.execute("select pg_sleep(0.05)").await.unwrap();
    }))
    .await;
    cut().await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    for _ in 0..20 {
        store.read_all(Position::START, 10).await.unwrap();
    }
}

/// Services never migrate: on a database behind this build's schema they
/// refuse to start, naming the command that fixes it. (That a migrated
/// database is accepted, every test shows: `TestDatabase` migrates, then
/// connects.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_behind_the_schema_is_refused() {
    let database = TestDatabase::create().await;
    let mut connection = database.connection().await;
    connection
        .execute("delete from _sqlx_migrations where version = (select max(version) from _sqlx_migrations)")
        .await
        .unwrap();
    let behind = PgEventStore::connect(&database.url, 2).await.unwrap_err();
    assert!(matches!(behind, StoreError::Schema(_)), "{behind:?}");
    let message = behind.to_string();
    assert!(message.contains("run `command-api migrate`"), "{message}");
    assert!(
        message.contains(&format!(
            "this build needs {}",
            PgEventStore::schema_version()
        )),
        "{message}"
    );

    connection
        .execute("drop table _sqlx_migrations")
        .await
        .unwrap();
    let never = PgEventStore::connect(&database.url, 2).await.unwrap_err();
    assert!(never.to_string().contains("at migration none"), "{never}");
}
