//! `cargo run --release -p realtime-demo [-- --addr HOST:PORT] [--retry-ms N] [--framework actix]`
//! (every flag also as `REALTIME_*` in the environment: `--help` lists them)

use std::process::ExitCode;

use realtime_demo::{Framework, Options};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,realtime_core=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let options = match Options::from_env_and_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) if message == "help" => {
            eprintln!("{}", Options::usage());
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("{message}\n\n{}", Options::usage());
            return ExitCode::from(2);
        }
    };
    let served = match options.framework {
        // actix-web runs in its own `System` (a runtime per worker thread).
        Framework::Actix => {
            actix_web::rt::System::new().block_on(realtime_demo::run_actix(options))
        }
        Framework::Axum => match tokio::runtime::Runtime::new() {
            Ok(runtime) => runtime.block_on(realtime_demo::run(options)),
            Err(error) => Err(error.into()),
        },
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("realtime-demo: {error}");
            ExitCode::FAILURE
        }
    }
}
