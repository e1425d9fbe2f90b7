//! `cargo xtask conformance --backend NAME`: runs the suite and prints one row per test and
//! one column per history mode (shared store, per-instance history): pass, FAIL or skip.

use std::process::Command;

pub(crate) struct Backend {
    pub(crate) name: &'static str,
    package: &'static str,
    test: &'static str,
    /// Tests run at once: the local SQS endpoint (moto) serves one request at a time, and
    /// four tests' instances polling it at once timed its answers out.
    threads: &'static str,
}

/// Every backend with a conformance test target.
pub(crate) const BACKENDS: &[Backend] = &[
    Backend {
        name: "memory",
        package: "realtime-conformance",
        test: "memory",
        threads: "4",
    },
    Backend {
        name: "redis",
        package: "realtime-redis",
        test: "conformance",
        threads: "4",
    },
    Backend {
        name: "redis-cluster",
        package: "realtime-redis",
        test: "conformance_cluster",
        threads: "4",
    },
    Backend {
        name: "kafka",
        package: "realtime-kafka",
        test: "conformance",
        threads: "4",
    },
    Backend {
        name: "sqs",
        package: "realtime-sqs",
        test: "conformance",
        threads: "2",
    },
    Backend {
        name: "amqp",
        package: "realtime-amqp",
        test: "conformance",
        threads: "4",
    },
    Backend {
        name: "nats",
        package: "realtime-nats",
        test: "conformance",
        threads: "4",
    },
];

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let name = match args {
        [flag, name] if flag == "--backend" => name.as_str(),
        _ => return Err("usage: cargo xtask conformance --backend NAME|all".into()),
    };
    crate::services::ensure_for_tests()?;
    if name == "all" {
        return run_all();
    }
    let backend = BACKENDS.iter().find(|b| b.name == name).ok_or_else(|| {
        let known: Vec<_> = BACKENDS.iter().map(|b| b.name).collect();
        format!(
            "unknown backend {name:?} (known: {}, all)",
            known.join(", ")
        )
    })?;
    let (rows, result) = run_backend(backend)?;
    print_table(name, &rows);
    result
}

/// Every backend, then one table: a row per test, a column per backend, each cell the
/// outcome in each history mode (shared store / per instance).
fn run_all() -> Result<(), String> {
    let mut runs = Vec::new();
    let mut failures = Vec::new();
    for backend in BACKENDS {
        eprintln!("xtask: conformance on {}", backend.name);
        let (rows, result) = run_backend(backend)?;
        if let Err(error) = result {
            failures.push(error);
        }
        runs.push((backend.name, rows));
    }
    eprintln!("{}", combined_table(&runs));
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

/// The suite's rows on `backend`, and whether it passed.
fn run_backend(backend: &Backend) -> Result<(Vec<Row>, Result<(), String>), String> {
    let name = backend.name;
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
            &format!("--test-threads={}", backend.threads),
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
    let failed = rows
        .iter()
        .filter(|(_, _, outcome)| *outcome == Outcome::Fail)
        .count();
    let result = if failed > 0 || !output.status.success() {
        eprintln!("{stdout}");
        Err(format!("{failed} conformance test(s) failed on {name}"))
    } else {
        Ok(())
    };
    Ok((rows, result))
}

/// A row per test, a column per backend; a cell lists the outcome per mode, in the modes'
/// order (`shared/per_instance`), `-` where the backend has no such test or mode.
fn combined_table(runs: &[(&str, Vec<Row>)]) -> String {
    let mut modes: Vec<&str> = runs
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(|(_, m, _)| m.as_str()))
        .collect();
    // The two history modes first, then any other (the memory backend's `with_store`).
    modes.sort_by_key(|m| (!matches!(*m, "shared" | "per_instance"), *m != "shared", *m));
    modes.dedup();
    let mut names: Vec<&str> = runs
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(|(n, _, _)| n.as_str()))
        .collect();
    names.sort();
    names.dedup();
    let cell = |rows: &[Row], name: &str| {
        let outcomes: Vec<&str> = modes
            .iter()
            .filter_map(|mode| {
                rows.iter()
                    .find(|(n, m, _)| n == name && m == mode)
                    .map(|(_, _, o)| o.word())
            })
            .collect();
        if outcomes.is_empty() {
            "-".to_owned()
        } else {
            outcomes.join("/")
        }
    };
    let mut out = format!(
        "\nconformance, every backend (cells: {})\n\n| test |",
        modes.join(" / ")
    );
    for (backend, _) in runs {
        out.push_str(&format!(" {backend} |"));
    }
    out.push_str(&format!("\n|---|{}\n", "---|".repeat(runs.len())));
    for name in &names {
        out.push_str(&format!("| {name} |"));
        for (_, rows) in runs {
            out.push_str(&format!(" {} |", cell(rows, name)));
        }
        out.push('\n');
    }
    for (backend, rows) in runs {
        let count = |o: Outcome| rows.iter().filter(|(_, _, x)| *x == o).count();
        out.push_str(&format!(
            "\n{backend}: {} passed, {} failed, {} skipped",
            count(Outcome::Pass),
            count(Outcome::Fail),
            count(Outcome::Skip)
        ));
    }
    out.push('\n');
    out
}

/// A test's outcome in one mode: (test, mode, outcome).
type Row = (String, String, Outcome);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Pass,
    Fail,
    Skip,
}

impl Outcome {
    fn word(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "FAIL",
            Outcome::Skip => "skip",
        }
    }
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
                let cell = outcome.map_or("-", Outcome::word);
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
    fn the_combined_table_has_a_column_per_backend_and_a_cell_per_mode() {
        let row = |n: &str, m: &str, o| (n.to_owned(), m.to_owned(), o);
        let runs = vec![
            (
                "redis",
                vec![
                    row("a", "shared", Outcome::Pass),
                    row("a", "per_instance", Outcome::Skip),
                ],
            ),
            ("nats", vec![row("a", "shared", Outcome::Fail)]),
        ];
        let table = combined_table(&runs);
        assert!(table.contains("| test | redis | nats |"), "{table}");
        assert!(table.contains("| a | pass/skip | FAIL |"), "{table}");
    }

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
