//! The end-to-end smoke: the load generator's smoke mode against a running
//! system. `deploy/dev smoke` (part of `deploy/dev test`) starts the whole
//! system from this checkout and runs this test against it; on its own it
//! is ignored, since it needs that system.

use paystream_bench::run::options_from_env;

#[tokio::test]
#[ignore = "needs the whole system running: `deploy/dev smoke` starts it and runs this"]
async fn the_whole_system_loses_nothing_and_every_webhook_verifies() {
    let options = options_from_env(true);
    let report = paystream_bench::run(options)
        .await
        .expect("the load generator ran");
    println!("{}", report.markdown);
    assert_eq!(report.lost, 0, "accepted operations were lost");
    assert!(
        report.errors.is_empty(),
        "requests failed: {:?}",
        report.errors
    );
    assert_eq!(report.bad_signatures, 0, "webhooks did not verify");
}
