use clap::Parser;
use paystream_webhook_dispatcher::Config;

/// Paystream webhook dispatcher: signed webhooks on a durable retry schedule.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    config: Config,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    paystream_webhook_dispatcher::service::run(Cli::parse().config).await
}
