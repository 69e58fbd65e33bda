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

#[test]
fn every_fixture_message_is_classified_correctly() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/device_errors.jsonl"
    );
    let fixtures = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut wrong = Vec::new();
    let mut count = 0;
    for line in fixtures.lines().filter(|l| !l.trim().is_empty()) {
        count += 1;
        let message = field(line, "message");
        let want = expected(&field(line, "class"));
        let got = classify(&message);
        if got != want {
            wrong.push(format!("{got:?} instead of {want:?}: {message}"));
        }
    }
    assert!(count >= 20, "only {count} fixtures read");
    assert!(wrong.is_empty(), "misclassified:\n{}", wrong.join("\n"));
}
