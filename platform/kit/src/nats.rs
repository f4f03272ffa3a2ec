//! Connecting to NATS, the same way in every service.

use async_nats::jetstream;

use crate::config::NatsArgs;

/// A client that keeps reconnecting by itself, even if NATS is down at
/// start; `name` shows in the server's connection list.
pub async fn connect(args: &NatsArgs, name: &str) -> anyhow::Result<async_nats::Client> {
    Ok(async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .connection_timeout(NatsArgs::REQUEST_TIMEOUT)
        .connect(&args.nats_url)
        .await?)
}

/// A JetStream context whose API calls give up after
/// [`NatsArgs::REQUEST_TIMEOUT`].
pub fn jetstream(client: &async_nats::Client) -> jetstream::Context {
    let mut context = jetstream::new(client.clone());
    context.set_timeout(NatsArgs::REQUEST_TIMEOUT);
    context
}

/// Whether the client is connected right now (for `/health`).
pub fn connected(client: &async_nats::Client) -> bool {
    client.connection_state() == async_nats::connection::State::Connected
}
