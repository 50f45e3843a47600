//! Replays the committed fuzz corpus through the harness: every file of
//! `fuzz/corpus/<target>/` (seeds, reproducers of hostile inputs, inputs the
//! fuzzer found) and of `fuzz/artifacts/<target>/` (crashes and timeouts once
//! fixed), so an input that once broke a parser fails `cargo test` if it
//! breaks it again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long one input may take in an unoptimised test build: far above what
/// any committed input takes, far below what a parser gone exponential on one
/// of the large reproducers would (999 duplicate keys once took 14 s; they
/// now cost linear time).
const PER_INPUT_LIMIT: Duration = Duration::from_secs(5);

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn inputs(target: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for kind in ["corpus", "artifacts"] {
        let dir = fuzz_dir().join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn replay(target: &str) {
    let run = quiver_fuzz::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, run)| *run)
        .unwrap();
    let files = inputs(target);
    assert!(!files.is_empty(), "fuzz/corpus/{target}/ is empty");
    let mut failures = Vec::new();
    for path in &files {
        let data = std::fs::read(path).unwrap();
        let started = Instant::now();
        let outcome = std::panic::catch_unwind(|| run(&data));
        let took = started.elapsed();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if outcome.is_err() {
            failures.push(format!("{name}: broke an invariant (message above)"));
        } else if took > PER_INPUT_LIMIT {
            failures.push(format!("{name}: took {took:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{target}: {} of {} inputs failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

macro_rules! corpus_tests {
    ($($target:ident),* $(,)?) => {
        $(
            #[test]
            fn $target() {
                replay(stringify!($target));
            }
        )*

        /// Every harness function has a test above, a fuzz target and a corpus.
        #[test]
        fn every_target_is_replayed() {
            let tested = [$(stringify!($target)),*];
            for (name, _) in quiver_fuzz::TARGETS {
                assert!(tested.contains(name), "{name} has no corpus test");
                let source = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
                assert!(source.is_file(), "{} is missing", source.display());
            }
            assert_eq!(tested.len(), quiver_fuzz::TARGETS.len());
        }
    };
}

corpus_tests!(
    tick_csv,
    tick_jsonl,
    bus_entry,
    strategies_yaml,
    registry_yaml,
    settings_toml,
    settings_yaml,
);

/// No corpus or artifact directory is left over from a renamed target.
#[test]
fn no_stray_corpus() {
    for kind in ["corpus", "artifacts"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind)) else {
            continue;
        };
        for entry in entries {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                quiver_fuzz::TARGETS
                    .iter()
                    .any(|(target, _)| *target == name),
                "fuzz/{kind}/{name} belongs to no target"
            );
        }
    }
}
