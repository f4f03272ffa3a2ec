//! The whole system, end to end, as `deploy/dev up` runs it:
//!
//! ```sh
//! TEST_MODE=true TEST_PROCESSING_DELAY=0 deploy/dev up
//! cargo bench -p paystream-bench --bench end_to_end
//! ```
//!
//! Settings (`PAYSTREAM_E2E_*`, see `paystream_bench::run::options_from_env`):
//! `RATES` (payments started per second, one step each, default
//! `50,100,200,300,400,600,800,1000,1200`), `STEP_SECONDS` (15), `MERCHANTS`
//! (32), `ENDPOINTS` (`0,1`: a pass without and one with a webhook endpoint
//! per merchant), `PATH` (`full`: order, payment, outcome, capture, refund;
//! `settle`: up to the outcome), `BASELINE_SECONDS` (5; 0 skips),
//! `KNEE_P99_MS` (100), `DRAIN_SECONDS` (60), `BASE_URL`, `DATABASE_URL`,
//! `NATS_URL`, `STREAM`, `PID_DIR`.
//!
//! `PAYSTREAM_E2E_SMOKE=1` runs a few seconds at 20 payments/s with one
//! endpoint per merchant and fails unless nothing was lost, no request
//! failed and every webhook verified (`deploy/dev test` runs it).

use paystream_bench::run::options_from_env;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; nothing else is taken from the command line.
    let smoke = std::env::var("PAYSTREAM_E2E_SMOKE").is_ok_and(|value| value == "1");
    let options = options_from_env(smoke);
    eprintln!(
        "end-to-end load against {} ({:?})",
        options.base_url, options.rates
    );
    let report = paystream_bench::run(options).await?;
    println!("{}", report.markdown);
    anyhow::ensure!(
        report.lost == 0,
        "{} accepted operations were lost",
        report.lost
    );
    if smoke {
        anyhow::ensure!(
            report.errors.is_empty(),
            "requests failed: {:?}",
            report.errors
        );
        anyhow::ensure!(report.bad_signatures == 0, "webhooks did not verify");
        println!("end-to-end smoke: nothing lost, no errors, every webhook verified");
    }
    Ok(())
}
