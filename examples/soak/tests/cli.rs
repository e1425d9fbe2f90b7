//! The soak's command line refuses what it cannot do before it starts anything (and this
//! test makes `cargo test --workspace --all-targets` build the binary `cargo xtask soak` runs).

#![allow(clippy::unwrap_used)]

use std::process::Command;

fn soak(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_realtime-soak"))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn an_unknown_flag_is_refused() {
    let (ok, stderr) = soak(&["--frobnicate", "1"]);
    assert!(!ok);
    assert!(stderr.contains("unknown flag --frobnicate"), "{stderr}");
}

#[test]
fn a_directory_it_did_not_make_is_never_emptied() {
    // The crate's own directory: not empty, no soak's marker.
    let dir = env!("CARGO_MANIFEST_DIR");
    let (ok, stderr) = soak(&["--dir", dir, "--minutes", "0"]);
    assert!(!ok);
    assert!(stderr.contains("not an earlier soak's"), "{stderr}");
    assert!(std::path::Path::new(dir).join("Cargo.toml").exists());
}
