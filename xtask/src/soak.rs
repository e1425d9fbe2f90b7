//! `cargo xtask soak --minutes N`: the chaos soak (`examples/soak`) against the demo, both
//! as the workspace's test build makes them.

use std::process::Command;

use crate::{Counts, workspace_root};

/// How long `cargo xtask test` (and so CI) soaks.
pub(crate) const IN_TEST_MINUTES: &str = "2";

/// Builds the soak and the demo (a no-op after `cargo test --workspace --all-targets`) and
/// runs the soak; its verdict counts as one test.
pub(crate) fn run_soak(args: &[String], counts: &mut Counts) -> Result<(), String> {
    let target = crate::browser::workspace_test_build()?;
    let mut command = Command::new(target.join("debug/realtime-soak"));
    command
        .arg("--demo")
        .arg(target.join("debug/realtime-demo"))
        .arg("--dir")
        .arg(target.join("soak"))
        .args(args)
        .current_dir(workspace_root());
    eprintln!("xtask: $ {command:?}");
    let status = command
        .status()
        .map_err(|e| format!("cannot run the soak: {e}"))?;
    if status.success() {
        counts.passed += 1;
        Ok(())
    } else {
        counts.failed += 1;
        Err(format!(
            "the soak failed ({status}): its table above says what; rerun with the seed it printed"
        ))
    }
}
