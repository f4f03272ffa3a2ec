use clap::{Parser, Subcommand};
use paystream_command_api::config::Config;
use paystream_store::{EventStore, PgEventStore};

/// Paystream command API: the write side of the gateway.
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
    /// Serve HTTP and relay events to NATS (the default).
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
    /// Verify every stream's hash chain; exit 1 if any is broken.
    Verify,
    /// Run the simulated acquirer alone (payment and refund outcomes).
    Acquirer,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    paystream_kit::telemetry::init(cli.config.runtime.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => paystream_command_api::startup::run(cli.config).await,
        Command::Acquirer => paystream_command_api::acquirer::run_standalone(cli.config).await,
        Command::Migrate => {
            PgEventStore::migrate(cli.config.database.database_url.expose()).await?;
            println!(
                "migrations applied: schema at {}",
                PgEventStore::schema_version()
            );
            Ok(())
        }
        Command::Verify => {
            let store = PgEventStore::connect(cli.config.database.database_url.expose(), 2).await?;
            let breaks = store.verify_all().await?;
            if breaks.is_empty() {
                println!("every stream's hash chain is intact");
                Ok(())
            } else {
                for broken in &breaks {
                    println!(
                        "{}: version {} {:?}",
                        broken.stream_id, broken.version, broken.kind
                    );
                }
                std::process::exit(1);
            }
        }
    }
}
