//! The end-to-end browser test of the demo: Debian's Chromium driven by playwright-core.

use std::path::Path;
use std::process::Command;

use crate::services::apt_install;
use crate::{Counts, run, run_counted, run_in, workspace_root};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Runs the JavaScript client's tests; installs what the browser test needs (Chromium, the npm
/// package), builds the demo and runs the test against the demo on axum and on actix-web.
pub(crate) fn test(counts: &mut Counts) -> Result<(), String> {
    ensure_chromium()?;
    if Command::new("node").arg("--version").output().is_err() {
        return Err("node is missing: install Node.js 20+ (apt-get install nodejs npm)".into());
    }
    // The JavaScript client's own tests (Node, no dependencies), then the page that uses it.
    let mut client = Command::new("node");
    client
        .arg("--test")
        .current_dir(workspace_root().join("clients/js"));
    run_counted(client, counts)?;
    let dir = workspace_root().join("examples/demo/browser");
    if !dir.join("node_modules/playwright-core").exists() {
        run_in(&dir, "npm", &["ci", "--no-audit", "--no-fund"])?;
    }
    let target = workspace_test_build()?;
    let demo = target.join("debug/realtime-demo");
    let shots = target.join("browser");
    std::fs::create_dir_all(&shots).map_err(|e| format!("create {}: {e}", shots.display()))?;
    // The same test on each framework the demo runs on.
    for (framework, args) in [("axum", ""), ("actix", "--framework actix")] {
        eprintln!("xtask: browser test, demo on {framework}");
        let mut command = Command::new("node");
        command
            .args(["--test", "demo.test.mjs"])
            .current_dir(&dir)
            .env("DEMO_BIN", &demo)
            .env("DEMO_ARGS", args)
            .env("CHROMIUM", CHROMIUM)
            .env("SCREENSHOT", shots.join(format!("demo-{framework}.png")));
        run_counted(command, counts)?;
    }
    Ok(())
}

fn ensure_chromium() -> Result<(), String> {
    if Path::new(CHROMIUM).exists() {
        return Ok(());
    }
    eprintln!("xtask: Chromium is missing; installing Debian's chromium package");
    apt_install(&["chromium", "fonts-dejavu-core"])
}

/// The workspace's test build (a no-op after `cargo test --workspace --all-targets`), and the
/// target directory holding its binaries: `build -p realtime-demo` unifies features
/// differently and rebuilt some 80 dependencies a second time, in time and disk.
pub(crate) fn workspace_test_build() -> Result<std::path::PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(
        &cargo,
        &[
            "test",
            "--locked",
            "--workspace",
            "--all-targets",
            "--no-run",
        ],
    )?;
    Ok(std::env::var("CARGO_TARGET_DIR")
        .map(Into::into)
        .unwrap_or_else(|_| workspace_root().join("target")))
}
