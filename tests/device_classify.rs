//! Every real device error message in `tests/fixtures` gets its class.

use resilience_runtime::device::{DeviceErrorKind, classify};

fn expected(class: &str) -> DeviceErrorKind {
    match class {
        "unsupported-op" => DeviceErrorKind::UnsupportedOp,
        "out-of-memory" => DeviceErrorKind::OutOfMemory,
        "dtype-unsupported" => DeviceErrorKind::UnsupportedDtype,
        "device-unavailable" => DeviceErrorKind::Unavailable,
        "device-lost/driver-fault" => DeviceErrorKind::Fault,
        "not-device-error" => DeviceErrorKind::NotDevice,
        other => panic!("unknown class `{other}` in the fixtures"),
    }
}

/// Reads one JSON string field; the fixture lines are flat objects.
fn field(line: &str, name: &str) -> String {
    let key = format!("\"{name}\": \"");
    let start = line
        .find(&key)
        .unwrap_or_else(|| panic!("no `{name}` in {line}"))
        + key.len();
    let mut out = String::new();
    let mut chars = line[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return out,
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => break,
            },
            c => out.push(c),
        }
    }
    panic!("unterminated `{name}` in {line}")
}

/// `(message, expected kind)` of every fixture: real messages from public
/// issues, with the class of what each means.
fn fixtures() -> Vec<(String, DeviceErrorKind)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/device_errors.jsonl"
    );
    let fixtures = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    fixtures
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| (field(line, "message"), expected(&field(line, "class"))))
        .collect()
}

#[test]
fn real_messages_are_classified_by_what_they_mean() {
    let fixtures = fixtures();
    assert!(
        fixtures.len() >= 100,
        "only {} fixtures read",
        fixtures.len()
    );
    let mut wrong = Vec::new();
    let mut unsafe_misses = Vec::new();
    for (message, want) in &fixtures {
        let got = classify(message);
        if got != *want {
            wrong.push(format!("{got:?} instead of {want:?}: {message}"));
            // A rerun where the device was not at fault (or cannot be
            // trusted) would hide a bug or a broken device.
            if got.falls_back() && !want.falls_back() {
                unsafe_misses.push(format!("{got:?} instead of {want:?}: {message}"));
            }
        }
    }
    let right = fixtures.len() - wrong.len();
    let accuracy = right as f64 / fixtures.len() as f64;
    println!(
        "{right} of {} classified as expected ({:.1}%)",
        fixtures.len(),
        accuracy * 100.0
    );
    assert!(
        unsafe_misses.is_empty(),
        "fell back on:\n{}",
        unsafe_misses.join("\n")
    );
    assert!(
        accuracy >= 0.85,
        "{:.1}%; misclassified:\n{}",
        accuracy * 100.0,
        wrong.join("\n")
    );
}
