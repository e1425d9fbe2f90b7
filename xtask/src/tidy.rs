//! Repository rules checked by `cargo test -p xtask`.

use std::fs;
use std::path::{Path, PathBuf};

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn crate_dirs() -> Vec<PathBuf> {
    let root = crate::workspace_root();
    let mut dirs: Vec<PathBuf> = fs::read_dir(root.join("crates"))
        .expect("crates/")
        .map(|e| e.expect("dir entry").path())
        .collect();
    dirs.push(root.join("xtask"));
    if let Ok(examples) = fs::read_dir(root.join("examples")) {
        dirs.extend(
            examples
                .map(|e| e.expect("dir entry").path())
                .filter(|p| p.join("Cargo.toml").exists()),
        );
    }
    dirs
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_crate_inherits_the_workspace_settings() {
    for dir in crate_dirs() {
        let manifest = read(&dir.join("Cargo.toml"));
        for needle in [
            "edition.workspace = true",
            "rust-version.workspace = true",
            "[lints]\nworkspace = true",
        ] {
            assert!(
                manifest.contains(needle),
                "{}: missing `{needle}`",
                dir.display()
            );
        }
    }
}

#[test]
fn source_files_stay_small() {
    for dir in crate_dirs() {
        let mut files = Vec::new();
        rust_files(&dir, &mut files);
        for file in files {
            let lines = read(&file).lines().count();
            // Library crates keep files small enough to read in one sitting; tools and
            // examples get more room.
            let limit = if file.starts_with(crate::workspace_root().join("crates")) {
                400
            } else {
                600
            };
            assert!(
                lines <= limit,
                "{} has {lines} lines (limit {limit}); split it by concern",
                file.display()
            );
        }
    }
}

#[test]
fn conformance_macro_lists_every_suite_function() {
    let root = crate::workspace_root().join("crates/realtime-conformance/src");
    let lib = read(&root.join("lib.rs"));
    let mut functions = Vec::new();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut transport = Vec::new();
    for file in files {
        // The fault scenario, the bench measurements and the connection-mode check are
        // called by backends' own tests.
        if file.ends_with("restart.rs")
            || file.ends_with("measure.rs")
            || file.ends_with("exchange.rs")
        {
            continue;
        }
        // The transport suite has its own macro.
        let list = if file.starts_with(root.join("transport")) {
            &mut transport
        } else {
            &mut functions
        };
        for line in read(&file).lines() {
            if let Some(rest) = line.strip_prefix("pub async fn ") {
                list.push(rest.split('(').next().unwrap_or_default().to_owned());
            }
        }
    }
    assert!(functions.len() >= 20, "found only {functions:?}");
    assert!(transport.len() >= 8, "found only {transport:?}");
    let transport_macro = read(&root.join("transport/mod.rs"));
    let transport_list = transport_macro
        .split("(@each $serve, #[$test];")
        .nth(1)
        .expect("transport macro list");
    for name in &transport {
        assert!(
            transport_list.contains(name.as_str()),
            "transport_tests! misses {name}"
        );
    }
    let macro_body = lib.split("(@each $backend;").nth(1).expect("macro list");
    for name in &functions {
        assert!(lib.contains(&format!("\"{name}\"")), "ALL misses {name}");
        assert!(
            macro_body.contains(name.as_str()),
            "conformance_tests! misses {name}"
        );
    }
}

#[test]
fn readme_and_ci_use_the_same_test_command() {
    let root = crate::workspace_root();
    let readme = read(&root.join("README.md"));
    let ci = read(&root.join(".ci/run"));
    assert!(
        readme.contains("cargo xtask test"),
        "README must give the test command"
    );
    assert!(
        ci.contains("cargo xtask ci") || ci.contains("cargo xtask test"),
        ".ci/run must run it"
    );
}

#[test]
fn benchmarks_md_carries_the_current_notes() {
    let root = crate::workspace_root();
    let report = read(&root.join("BENCHMARKS.md"));
    let notes = read(&root.join("xtask/bench-notes.md"));
    assert!(
        report.trim_end().ends_with(notes.trim_end()),
        "BENCHMARKS.md must end with xtask/bench-notes.md as it is: run `cargo xtask bench`"
    );
}

/// The arrows that must never exist: an adapter on another adapter, the neutral HTTP layer on
/// a framework or an adapter, core on a framework, an adapter or a broker client. Every
/// dependency section counts except dev- and build-dependencies (target-specific and table
/// forms included), and a renamed dependency counts by its `package`.
#[test]
fn no_forbidden_dependencies() {
    let root = crate::workspace_root().join("crates");
    let dependencies = |krate: &str| -> Vec<String> {
        let manifest = read(&root.join(krate).join("Cargo.toml"));
        let mut names = Vec::new();
        for section in manifest.split("\n[") {
            let (header, body) = section.split_once(']').unwrap_or((section, ""));
            if !header.contains("dependencies")
                || header.contains("dev-dependencies")
                || header.contains("build-dependencies")
            {
                continue;
            }
            // `[dependencies.axum]`: the table names the dependency.
            if let Some((_, name)) = header.rsplit_once("dependencies.") {
                names.push(name.trim_matches(['"', ' ']).to_owned());
            }
            for line in body.lines() {
                if let Some(name) = line.split(['=', '.']).next().map(str::trim)
                    && !name.is_empty()
                    && !name.starts_with('#')
                {
                    names.push(name.to_owned());
                }
                if let Some((_, rest)) = line.split_once("package") {
                    let package: String = rest
                        .trim_start_matches([' ', '='])
                        .trim_start_matches('"')
                        .chars()
                        .take_while(|c| *c != '"')
                        .collect();
                    names.push(package);
                }
            }
        }
        names
    };
    // Every framework adapter: `realtime-sse-<framework>`, `realtime-ws`, `realtime-ws-<framework>`.
    let mut adapters: Vec<String> = fs::read_dir(&root)
        .expect("crates/")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("realtime-sse-") || name.starts_with("realtime-ws"))
        .collect();
    adapters.sort();
    assert!(adapters.len() >= 3, "found only {adapters:?}");
    let adapters: Vec<&str> = adapters.iter().map(String::as_str).collect();
    let frameworks = [
        "axum",
        "actix",
        "hyper",
        "tungstenite",
        "tower",
        "warp",
        "poem",
    ];
    let brokers = ["redis", "rdkafka", "aws-sdk", "lapin", "nats", "fred"];
    for &adapter in &adapters {
        let deps = dependencies(adapter);
        for other in adapters.iter().filter(|a| **a != adapter) {
            assert!(
                !deps.iter().any(|d| d == other),
                "{adapter} depends on {other}"
            );
        }
    }
    for (krate, forbidden) in [
        ("realtime-http", &frameworks[..]),
        ("realtime-http", &adapters[..]),
        ("realtime-core", &frameworks[..]),
        ("realtime-core", &adapters[..]),
        ("realtime-core", &brokers[..]),
    ] {
        for dep in dependencies(krate) {
            assert!(
                !forbidden.iter().any(|f| dep.contains(f)),
                "{krate} depends on {dep}"
            );
        }
    }
}

/// The module path of a source file under `src` (`manager/hub.rs` → `manager::hub`).
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap_or(file).with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts.join("::")
}

/// The modules of `modules` that `code` names through `crate::` or `super::` (comments
/// left out), seen from module `from`.
fn referenced(code: &str, from: &str, modules: &[String]) -> Vec<String> {
    let parent = from.rsplit_once("::").map_or("", |(p, _)| p);
    let mut found = Vec::new();
    for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
        for (prefix, base) in [("crate::", String::new()), ("super::", parent.to_owned())] {
            for (index, _) in line.match_indices(prefix) {
                let rest = &line[index + prefix.len()..];
                let path: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
                // The longest module the path starts with.
                for take in (1..=segments.len()).rev() {
                    let name = segments[..take].join("::");
                    let name = if base.is_empty() {
                        name
                    } else {
                        format!("{base}::{name}")
                    };
                    if modules.contains(&name) && name != from {
                        found.push(name);
                        break;
                    }
                }
            }
        }
    }
    found
}

/// No two sibling source files name each other through `crate::` or `super::` paths: a concern
/// that needs another depends on it one way. (A module's `mod.rs` and its own children are
/// not checked: children use their parent's private state by design.)
#[test]
fn no_two_files_import_each_other() {
    for dir in crate_dirs() {
        let src = dir.join("src");
        if !src.exists() {
            continue;
        }
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let modules: Vec<String> = files.iter().map(|f| module_of(&src, f)).collect();
        let uses: Vec<Vec<String>> = files
            .iter()
            .zip(&modules)
            .map(|(file, module)| referenced(&read(file), module, &modules))
            .collect();
        for (i, a) in modules.iter().enumerate() {
            for (j, b) in modules.iter().enumerate().skip(i + 1) {
                assert!(
                    !(uses[i].contains(b) && uses[j].contains(a)),
                    "{} and {} import each other ({})",
                    a,
                    b,
                    src.display()
                );
            }
        }
    }
}

/// Crates that implement a store or a bus for a broker: every crate under `crates/` whose
/// sources implement `Store`, `Bus` or `BusDriver`, except core (which defines them).
fn backend_crates() -> Vec<PathBuf> {
    crate_dirs()
        .into_iter()
        .filter(|dir| dir.starts_with(crate::workspace_root().join("crates")))
        .filter(|dir| !dir.ends_with("realtime-core"))
        .filter(|dir| {
            let mut files = Vec::new();
            rust_files(&dir.join("src"), &mut files);
            files.iter().any(|file| {
                let code = read(file);
                ["impl Store for ", "impl Bus for ", "impl BusDriver for "]
                    .iter()
                    .any(|needle| code.contains(needle))
            })
        })
        .collect()
}

#[test]
fn every_backend_has_the_same_layout() {
    let backends = backend_crates();
    assert!(
        backends.iter().any(|d| d.ends_with("realtime-redis")),
        "found {backends:?}"
    );
    for dir in backends {
        let name = dir.display();
        for file in ["lib.rs", "config.rs", "error.rs"] {
            assert!(
                dir.join("src").join(file).exists(),
                "{name}: a backend crate has src/{file}"
            );
        }
        let error = read(&dir.join("src/error.rs"));
        // A private error naming what failed and where, mapped into core's public one.
        let private = error.split("pub(crate) struct ").skip(1).any(|rest| {
            let body = rest.split('}').next().unwrap_or_default();
            body.contains("operation:") && body.contains("channel:")
        });
        assert!(
            private,
            "{name}: src/error.rs has a pub(crate) struct with `operation` and `channel` fields"
        );
        assert!(
            error.contains("> for BackendError"),
            "{name}: src/error.rs maps its private error into realtime_core::BackendError"
        );
        let lib = read(&dir.join("src/lib.rs"));
        assert!(
            !lib.contains("pub mod error") && !lib.contains("pub use error"),
            "{name}: the private error stays private (the public one is core's)"
        );
    }
}
