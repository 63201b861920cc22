//! The project stands alone: a user's clone has nothing beside it and its own folder
//! can be anywhere, so no file of it may name the reference folder that sits beside the
//! checkout on the machines it was written on, or an absolute path under those
//! machines' root folder.
//!
//! The files are those git tracks (`git ls-files`); without git (or outside a
//! checkout), every file of the tree but `target/` and `.git/`. The patterns are built
//! from their pieces, so this file is searched too.

use std::path::Path;

use regex::Regex;

use crate::common::root;

/// The folders and files searched, relative to the crate root.
const SEARCHED_DIRS: [&str; 6] = ["src/", "tests/", "scripts/", "bench/", "fuzz/", ".ci/"];
const SEARCHED_FILES: [&str; 2] = ["Cargo.toml", "README.md"];

/// The reference folder beside the checkout, and the root folder of the machines the
/// project was written on: the pieces the patterns are built from.
const SIBLING: &str = "shared";
const MACHINE_ROOT: &str = "work";

/// The files git tracks, relative to `root` with `/` separators; `None` when git does
/// not run or this is not a checkout.
fn git_files(root: &Path) -> Option<Vec<String>> {
    let out = std::process::Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let listed = String::from_utf8_lossy(&out.stdout);
    Some(
        listed
            .split('\0')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

/// Every file under `dir`, relative to `root`, without `target/` and `.git/` and
/// without following symbolic links to folders.
fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if entry.file_name() != "target" && entry.file_name() != ".git" {
                walk(root, &path, out);
            }
        } else if path.is_file() {
            let relative = path.strip_prefix(root).unwrap();
            let parts: Vec<_> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect();
            out.push(parts.join("/"));
        }
    }
}

fn searched(path: &str) -> bool {
    SEARCHED_FILES.contains(&path) || SEARCHED_DIRS.iter().any(|d| path.starts_with(d))
}

#[test]
fn no_file_names_a_folder_beside_the_project_or_an_absolute_work_path() {
    let root = root();
    let files = git_files(&root).unwrap_or_else(|| {
        let mut all = Vec::new();
        walk(&root, &root, &mut all);
        all
    });
    let files: Vec<String> = files.into_iter().filter(|p| searched(p)).collect();
    for expected in [
        "Cargo.toml",
        "README.md",
        "src/main.rs",
        "tests/it/main.rs",
        "tests/it/standalone.rs",
    ] {
        assert!(
            files.iter().any(|p| p == expected),
            "{expected} is not among the files searched: {files:?}"
        );
    }

    // The sibling folder as a whole name after `../`, and the machines' root folder where
    // it starts an absolute path (not inside `a/b/`).
    let sibling = Regex::new(&format!(r"\.\./{SIBLING}(?:$|[^\w-])")).unwrap();
    let absolute = Regex::new(&format!(r"(?:^|[^\w.~/-]|file://)/{MACHINE_ROOT}/")).unwrap();
    let mut found = Vec::new();
    for path in &files {
        // A tracked file deleted from the work tree names nothing.
        let Ok(bytes) = std::fs::read(root.join(path)) else {
            continue;
        };
        for (n, line) in String::from_utf8_lossy(&bytes).lines().enumerate() {
            if sibling.is_match(line) || absolute.is_match(line) {
                found.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "{} line(s) name the folder beside the project or an absolute path of the \
         machines it was written on; a user's clone has neither:\n{}",
        found.len(),
        found.join("\n")
    );
}
