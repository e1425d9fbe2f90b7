//! `cargo xtask conformance --backend NAME`: runs the suite and prints test → pass/fail.

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
    let failed = rows.iter().filter(|(_, passed)| !passed).count();
    if failed > 0 || !output.status.success() {
        eprintln!("{stdout}");
        return Err(format!("{failed} conformance test(s) failed on {name}"));
    }
    Ok(())
}

/// `test NAME ... ok|FAILED` lines of libtest's output.
fn parse(stdout: &str) -> Vec<(String, bool)> {
    let mut rows: Vec<(String, bool)> = stdout
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("test ")?;
            let (name, outcome) = rest.split_once(" ... ")?;
            match outcome.trim() {
                "ok" => Some((name.to_owned(), true)),
                "FAILED" => Some((name.to_owned(), false)),
                _ => None,
            }
        })
        .collect();
    rows.sort();
    rows
}

fn print_table(backend: &str, rows: &[(String, bool)]) {
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(4).max(4);
    let passed = rows.iter().filter(|(_, ok)| *ok).count();
    eprintln!("\nconformance: {backend}");
    eprintln!("{:width$}  result", "test");
    eprintln!("{:-<width$}  ------", "");
    for (name, ok) in rows {
        eprintln!("{name:width$}  {}", if *ok { "pass" } else { "FAIL" });
    }
    eprintln!("{passed} passed, {} failed\n", rows.len() - passed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libtest_lines() {
        let out =
            "running 2 tests\ntest b_case ... FAILED\ntest a_case ... ok\ntest result: FAILED.";
        assert_eq!(
            parse(out),
            vec![("a_case".to_owned(), true), ("b_case".to_owned(), false)]
        );
    }
}
