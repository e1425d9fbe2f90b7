//! `cargo xtask conformance --backend NAME`: runs the suite and prints one row per test and
//! one column per history mode (shared store, per-instance history): pass, FAIL or skip.

use std::process::Command;

pub(crate) struct Backend {
    pub(crate) name: &'static str,
    package: &'static str,
    test: &'static str,
}

/// Every backend with a conformance test target.
pub(crate) const BACKENDS: &[Backend] = &[
    Backend {
        name: "memory",
        package: "realtime-conformance",
        test: "memory",
    },
    Backend {
        name: "redis",
        package: "realtime-redis",
        test: "conformance",
    },
    Backend {
        name: "kafka",
        package: "realtime-kafka",
        test: "conformance",
    },
    Backend {
        name: "sqs",
        package: "realtime-sqs",
        test: "conformance",
    },
];

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let name = match args {
        [flag, name] if flag == "--backend" => name.as_str(),
        _ => return Err("usage: cargo xtask conformance --backend NAME".into()),
    };
    let backend = BACKENDS.iter().find(|b| b.name == name).ok_or_else(|| {
        let known: Vec<_> = BACKENDS.iter().map(|b| b.name).collect();
        format!("unknown backend {name:?} (known: {})", known.join(", "))
    })?;
    crate::services::ensure_for_tests()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "test",
            "--locked",
            "-p",
            backend.package,
            "--test",
            backend.test,
            "--",
            "--test-threads=4",
            // Skipped functions say so on stdout; libtest shows it for passing tests only so.
            "--show-output",
        ])
        .current_dir(crate::workspace_root())
        .output()
        .map_err(|e| format!("cannot run cargo test: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let rows = parse(&stdout);
    if rows.is_empty() {
        eprintln!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
        return Err(format!(
            "the {name} conformance run produced no test results"
        ));
    }
    print_table(name, &rows);
    let failed = rows
        .iter()
        .filter(|(_, _, outcome)| *outcome == Outcome::Fail)
        .count();
    if failed > 0 || !output.status.success() {
        eprintln!("{stdout}");
        return Err(format!("{failed} conformance test(s) failed on {name}"));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Pass,
    Fail,
    Skip,
}

/// `test MODE::NAME ... ok|FAILED` lines of libtest's output, as (name, mode, outcome); a
/// passing test whose output (`---- MODE::NAME stdout ----`) says `conformance-skip:` is a skip.
fn parse(stdout: &str) -> Vec<(String, String, Outcome)> {
    let mut skipped = std::collections::HashSet::new();
    let mut current: Option<&str> = None;
    for line in stdout.lines() {
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|rest| rest.strip_suffix(" stdout ----"))
        {
            current = Some(name);
        } else if let Some(name) = current.filter(|_| line.starts_with("conformance-skip:")) {
            skipped.insert(name.to_owned());
        }
    }
    let mut rows: Vec<(String, String, Outcome)> = stdout
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("test ")?;
            let (full, outcome) = rest.split_once(" ... ")?;
            let outcome = match outcome.trim() {
                "ok" if skipped.contains(full) => Outcome::Skip,
                "ok" => Outcome::Pass,
                "FAILED" => Outcome::Fail,
                _ => return None,
            };
            let (mode, name) = full.rsplit_once("::").unwrap_or(("-", full));
            Some((name.to_owned(), mode.to_owned(), outcome))
        })
        .collect();
    rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    rows
}

fn print_table(backend: &str, rows: &[(String, String, Outcome)]) {
    let mut modes: Vec<&str> = rows.iter().map(|(_, m, _)| m.as_str()).collect();
    modes.sort();
    modes.dedup();
    let mut names: Vec<&str> = rows.iter().map(|(n, _, _)| n.as_str()).collect();
    names.dedup();
    let width = names.iter().map(|n| n.len()).max().unwrap_or(4).max(4);
    eprintln!("\nconformance: {backend}");
    let header: Vec<String> = modes.iter().map(|m| format!("{m:>12}")).collect();
    eprintln!("{:width$}  {}", "test", header.join(" "));
    eprintln!("{:-<width$}  {}", "", "-".repeat(13 * modes.len()));
    for name in &names {
        let cells: Vec<String> = modes
            .iter()
            .map(|mode| {
                let outcome = rows
                    .iter()
                    .find(|(n, m, _)| n == name && m == mode)
                    .map(|(_, _, o)| *o);
                let cell = match outcome {
                    Some(Outcome::Pass) => "pass",
                    Some(Outcome::Fail) => "FAIL",
                    Some(Outcome::Skip) => "skip",
                    None => "-",
                };
                format!("{cell:>12}")
            })
            .collect();
        eprintln!("{name:width$}  {}", cells.join(" "));
    }
    let count = |o: Outcome| rows.iter().filter(|(_, _, x)| *x == o).count();
    eprintln!(
        "{} passed, {} failed, {} skipped (not applicable to the mode)\n",
        count(Outcome::Pass),
        count(Outcome::Fail),
        count(Outcome::Skip)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libtest_lines_with_modes_and_skips() {
        let out = "running 3 tests\ntest shared::b_case ... FAILED\ntest per_instance::a_case ... ok\n\
                   test shared::a_case ... ok\nsuccesses:\n\n---- per_instance::a_case stdout ----\n\
                   conformance-skip: a_case: applies to Shared\n\ntest result: FAILED.";
        assert_eq!(
            parse(out),
            vec![
                (
                    "a_case".to_owned(),
                    "per_instance".to_owned(),
                    Outcome::Skip
                ),
                ("a_case".to_owned(), "shared".to_owned(), Outcome::Pass),
                ("b_case".to_owned(), "shared".to_owned(), Outcome::Fail),
            ]
        );
    }
}
