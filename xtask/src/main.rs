//! Project automation. Run `cargo xtask help`.

use std::process::{Command, ExitCode};

mod conformance;
mod services;
#[cfg(test)]
mod tidy;

const HELP: &str = "\
cargo xtask <command>

Commands:
  test                          start the services the tests need, then run every test
                                (unit, conformance per backend, doc tests): the README's command
  conformance --backend NAME    run the conformance suite against one backend and print a table
                                (backends: memory)
  bench [-- CRITERION ARGS]     run the criterion benchmarks
  ci                            fmt --check, clippy -D warnings, cargo deny (if installed), test
  help                          this text
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("conformance") => conformance::run(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("ci") => ci(),
        Some("help") | None => {
            eprint!("{HELP}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a command in the workspace root, failing with its description if it fails.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<(), String> {
    eprintln!("xtask: $ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed: {status}", args.join(" ")))
    }
}

pub(crate) fn workspace_root() -> std::path::PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

fn test() -> Result<(), String> {
    services::ensure_for_tests()?;
    let cargo = cargo();
    run(
        &cargo,
        &["test", "--workspace", "--all-targets", "--locked"],
    )?;
    run(&cargo, &["test", "--workspace", "--doc", "--locked"])?;
    for backend in conformance::BACKENDS {
        conformance::run(&["--backend".into(), backend.name.into()])?;
    }
    Ok(())
}

fn bench(extra: &[String]) -> Result<(), String> {
    let mut args = vec!["bench", "-p", "realtime-core", "--bench", "fanout", "--"];
    args.extend(extra.iter().skip_while(|a| *a == "--").map(String::as_str));
    run(&cargo(), &args)
}

fn ci() -> Result<(), String> {
    let cargo = cargo();
    run(&cargo, &["fmt", "--all", "--check"])?;
    run(
        &cargo,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    match Command::new(&cargo).args(["deny", "--version"]).output() {
        Ok(out) if out.status.success() => {
            // Advisories need a database download this machine cannot make.
            run(
                &cargo,
                &["deny", "--offline", "check", "bans", "licenses", "sources"],
            )?;
        }
        _ => eprintln!("xtask: cargo-deny is not installed; skipping `cargo deny check`"),
    }
    test()
}
