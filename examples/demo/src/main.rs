//! `cargo run --release -p realtime-demo [-- --addr HOST:PORT] [--retry-ms N]`

use std::process::ExitCode;

use realtime_demo::Options;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,realtime_core=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}\n\n{}", Options::USAGE);
            return ExitCode::from(2);
        }
    };
    match realtime_demo::run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("realtime-demo: {error}");
            ExitCode::FAILURE
        }
    }
}
