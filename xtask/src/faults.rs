//! `cargo xtask faults`: the project's fault suite against real servers, as one table.
//!
//! Every backend crate keeps its fault scenarios in `tests/faults.rs`, as `#[ignore]`d tests
//! (they stop servers and take seconds each) whose names start with `fault_`; a scenario that counts deliveries prints a `fault-row:` line (see
//! `realtime_conformance::tally`). This runs them all and prints one row per scenario: what
//! was stored, received, duplicated, reordered, covered by a gap, and silently lost.

use std::process::Command;

use crate::{Counts, cargo, run_counted_lines};

/// Runs the fault suites and prints the table; fails if any scenario failed.
///
/// One `cargo test --workspace` over every package's `faults` target: built with the
/// workspace's feature set, it reuses what the unit-test build made (one `-p` per package
/// unified features differently and rebuilt librdkafka and others a second time).
pub(crate) fn run(counts: &mut Counts) -> Result<(), String> {
    let mut rows = Vec::new();
    let mut command = Command::new(cargo());
    command
        .args(["test", "--locked", "--workspace", "--no-fail-fast"])
        .args(["--test", "faults", "--"])
        .args(["--ignored", "--nocapture", "fault_"]);
    let result = run_counted_lines(command, counts, |line| {
        if let Some(row) = line.strip_prefix("fault-row: ") {
            rows.push(row.to_owned());
        }
    });
    eprintln!();
    println!("{}", table(&rows));
    result
}

/// `scenario | k=v k=v …` rows as a Markdown table.
fn table(rows: &[String]) -> String {
    const COLUMNS: [&str; 7] = [
        "published",
        "delivered",
        "duplicated",
        "reordered",
        "gap_covered",
        "gaps",
        "lost",
    ];
    let mut out = format!("| scenario | {} | verdict |\n", COLUMNS.join(" | "));
    out.push_str(&format!("|---|{}---|\n", "---:|".repeat(COLUMNS.len())));
    for row in rows {
        let (scenario, values) = row.split_once(" | ").unwrap_or((row, ""));
        let value = |name: &str| {
            values
                .split(' ')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .unwrap_or("?")
        };
        let cells: Vec<&str> = COLUMNS.iter().map(|c| value(c)).collect();
        let exact = ["duplicated", "reordered", "lost"]
            .iter()
            .all(|c| value(c) == "0");
        let verdict = if exact { "no silent loss" } else { "FAILED" };
        out.push_str(&format!(
            "| {scenario} | {} | {verdict} |\n",
            cells.join(" | ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn rows_become_a_table() {
        let table = super::table(&[
            "a | published=3 delivered=3 duplicated=0 reordered=0 gap_covered=0 gaps=0 lost=0"
                .to_owned(),
            "b | published=3 delivered=1 duplicated=0 reordered=0 gap_covered=0 gaps=0 lost=2"
                .to_owned(),
        ]);
        assert!(
            table.contains("| a | 3 | 3 | 0 | 0 | 0 | 0 | 0 | no silent loss |"),
            "{table}"
        );
        assert!(
            table.contains("| b | 3 | 1 | 0 | 0 | 0 | 0 | 2 | FAILED |"),
            "{table}"
        );
    }
}
