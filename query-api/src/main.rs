fn main() {
    eprintln!(
        "query-api: not built yet. It will serve the GET side of /api/v1 from the read models \
         (see docs/architecture.md)."
    );
    std::process::exit(2);
}
