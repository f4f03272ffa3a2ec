fn main() {
    eprintln!(
        "projector: not built yet. It will consume committed events from NATS JetStream \
         and build the PostgreSQL read models (see docs/architecture.md)."
    );
    std::process::exit(2);
}
