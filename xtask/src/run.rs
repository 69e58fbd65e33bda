//! Running cargo steps, and reading what the test harness reports.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// A cargo invocation with extra environment.
pub(crate) struct Cargo {
    args: Vec<&'static str>,
    env: Vec<(&'static str, OsString)>,
}

impl Cargo {
    pub(crate) fn new(args: impl IntoIterator<Item = &'static str>) -> Self {
        Self {
            args: args.into_iter().collect(),
            env: Vec::new(),
        }
    }

    pub(crate) fn env(mut self, env: &[(&'static str, OsString)]) -> Self {
        self.env.extend(env.iter().cloned());
        self
    }

    fn command(&self) -> Command {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    fn describe(&self) -> String {
        format!("cargo {}", self.args.join(" "))
    }
}

/// One named step of a task; prints its name when it starts.
pub(crate) struct Step;

impl Step {
    pub(crate) fn new(name: &str) -> Self {
        println!("==> {name}");
        Self
    }

    pub(crate) fn cargo(self, cargo: Cargo) -> Result<(), String> {
        let status = cargo
            .command()
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("`{}` failed ({status})", cargo.describe()))
        }
    }

    /// Runs a `cargo test`, echoing its output and counting results per suite.
    pub(crate) fn cargo_counting(self, cargo: Cargo) -> Result<Summary, String> {
        let (reader, writer) = std::io::pipe().map_err(|e| e.to_string())?;
        let mut command = cargo.command();
        command
            .stdout(writer.try_clone().map_err(|e| e.to_string())?)
            .stderr(writer)
            .stdin(Stdio::null());
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        drop(command); // closes our copies of the pipe's write end
        let mut summary = Summary::default();
        for line in BufReader::new(reader).lines() {
            let line = line.map_err(|e| e.to_string())?;
            println!("{line}");
            summary.read(&line);
        }
        let status = child.wait().map_err(|e| e.to_string())?;
        if status.success() {
            Ok(summary)
        } else {
            Err(format!("`{}` failed ({status})", cargo.describe()))
        }
    }
}

/// Test counts of one `cargo test` run, per suite (test target or doctests).
#[derive(Default)]
pub(crate) struct Summary {
    suites: BTreeMap<String, Counts>,
    current: String,
}

#[derive(Default, Clone, Copy)]
struct Counts {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl Summary {
    fn read(&mut self, line: &str) {
        let line = line.trim();
        if let Some(target) = line.strip_prefix("Running ") {
            // `Running tests/device_fallback.rs (target/debug/deps/…)`, or
            // `Running unittests src/lib.rs (target/debug/deps/crate_name-hash)`
            let path = target.split_whitespace().next().unwrap_or(target);
            self.current = if path == "unittests" {
                let binary = target.rsplit('/').next().unwrap_or(target);
                let binary = binary.trim_end_matches(')');
                binary
                    .rsplit_once('-')
                    .map_or(binary, |(name, _)| name)
                    .to_owned()
            } else {
                let stem = path.rsplit('/').next().unwrap_or(path);
                stem.trim_end_matches(".rs").to_owned()
            };
        } else if let Some(krate) = line.strip_prefix("Doc-tests ") {
            self.current = format!("doctests of {krate}");
        } else if let Some(result) = line.strip_prefix("test result: ") {
            let counts = self.suites.entry(self.current.clone()).or_default();
            for part in result.split(';') {
                let mut words = part.split_whitespace().rev();
                let (Some(kind), Some(n)) = (words.next(), words.next()) else {
                    continue;
                };
                let n: u64 = n.parse().unwrap_or(0);
                match kind {
                    "passed" => counts.passed += n,
                    "failed" => counts.failed += n,
                    "ignored" => counts.ignored += n,
                    _ => {}
                }
            }
        }
    }

    /// Fails unless the suite ran, with at least one test and none skipped.
    pub(crate) fn require_suite(&self, name: &str) -> Result<(), String> {
        match self.suites.get(name) {
            None => Err(format!("the `{name}` tests did not run")),
            Some(c) if c.passed == 0 => Err(format!("the `{name}` suite ran no test")),
            Some(c) if c.ignored > 0 => Err(format!("{} `{name}` tests were skipped", c.ignored)),
            Some(_) => Ok(()),
        }
    }

    pub(crate) fn add(&mut self, other: Summary) {
        for (name, counts) in other.suites {
            let mine = self.suites.entry(name).or_default();
            mine.passed += counts.passed;
            mine.failed += counts.failed;
            mine.ignored += counts.ignored;
        }
    }

    fn total(&self) -> Counts {
        self.suites.values().fold(Counts::default(), |a, c| Counts {
            passed: a.passed + c.passed,
            failed: a.failed + c.failed,
            ignored: a.ignored + c.ignored,
        })
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.total();
        write!(
            f,
            "tests: {} passed, {} failed, {} skipped",
            total.passed, total.failed, total.ignored
        )
    }
}
