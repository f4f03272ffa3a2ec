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
    let cli = Cli::parse();
    paystream_kit::telemetry::init(cli.config.runtime.log_format);
    paystream_webhook_dispatcher::service::run(cli.config).await
}
