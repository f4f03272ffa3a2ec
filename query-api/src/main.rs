use clap::Parser;
use paystream_query_api::config::Config;

/// Paystream query API: the read side of the gateway (GET /api/v1/...).
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
    paystream_query_api::startup::run(Cli::parse().config).await
}
