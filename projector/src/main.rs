use clap::{Parser, Subcommand};
use paystream_projector::{rebuild, Config, Projection};
use paystream_store::PgEventStore;

/// Paystream projector: builds the read models from committed events.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Tail JetStream and keep every projection current (the default).
    Run,
    /// Rebuild read models from the event store and swap them in atomically,
    /// while the live projector keeps running.
    Rebuild {
        /// Only this projection (payments, webhooks, merchants, ledger).
        #[arg(long)]
        projection: Option<String>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    paystream_kit::telemetry::init(cli.config.runtime.log_format);
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => {
            paystream_projector::startup::Application::build(cli.config)
                .await?
                .run_until_stopped()
                .await
        }
        Command::Rebuild { projection, quiet } => {
            let projections = match projection.as_deref() {
                None => Projection::ALL.to_vec(),
                Some(name) => vec![Projection::parse(name).ok_or_else(|| {
                    anyhow::anyhow!(
                        "unknown projection {name:?}: use one of payments, webhooks, merchants, ledger"
                    )
                })?],
            };
            let store = PgEventStore::connect(cli.config.database.database_url.expose(), 8).await?;
            let report = rebuild::rebuild(&store, &projections, !quiet).await?;
            println!(
                "rebuilt {} from {} events in {:.1} s ({:.0} events/s), {} parked, at position {}",
                projections
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>()
                    .join(", "),
                report.events,
                report.elapsed.as_secs_f64(),
                report.events_per_second(),
                report.parked,
                report.position
            );
            Ok(())
        }
    }
}
