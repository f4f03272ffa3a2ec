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
    let cli = Cli::parse();
    paystream_kit::telemetry::init(cli.config.runtime.log_format);
    paystream_query_api::startup::run(cli.config).await
}
