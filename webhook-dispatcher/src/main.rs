fn main() {
    eprintln!(
        "webhook-dispatcher: not built yet. It will sign and deliver webhooks for finalized \
         payments and refunds on a durable retry schedule (see docs/architecture.md)."
    );
    std::process::exit(2);
}
