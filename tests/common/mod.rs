//! Helpers shared by the integration tests.
#![allow(dead_code)]

#[cfg(feature = "tch")]
pub(crate) mod replica;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::subscriber::DefaultGuard;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// One `tracing` event, with its fields rendered as text.
#[derive(Debug, Clone)]
pub(crate) struct Recorded {
    pub(crate) level: Level,
    pub(crate) fields: BTreeMap<String, String>,
    /// The name of the span the event was emitted in, if any.
    pub(crate) span: Option<&'static str>,
}

impl Recorded {
    pub(crate) fn field(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .unwrap_or_else(|| panic!("event has no field `{name}`: {self:?}"))
    }
}

/// Records every event emitted on this thread while its guard lives.
#[derive(Clone, Default)]
pub(crate) struct Recorder(Arc<Mutex<Vec<Recorded>>>);

impl Recorder {
    pub(crate) fn install() -> (Self, DefaultGuard) {
        let recorder = Self::default();
        let subscriber = tracing_subscriber::registry().with(recorder.clone());
        (recorder, tracing::subscriber::set_default(subscriber))
    }

    /// The recorder of every event of the process, from any thread: the
    /// watchdog's and the escalation handlers' included. Installed once.
    pub(crate) fn global() -> Self {
        static GLOBAL: std::sync::OnceLock<Recorder> = std::sync::OnceLock::new();
        GLOBAL
            .get_or_init(|| {
                let recorder = Self::default();
                let subscriber = tracing_subscriber::registry().with(recorder.clone());
                tracing::subscriber::set_global_default(subscriber).expect("the first subscriber");
                recorder
            })
            .clone()
    }

    /// The events whose message is `message` and whose `field` is `value`.
    pub(crate) fn find(&self, message: &str, field: &str, value: &str) -> Vec<Recorded> {
        self.events()
            .into_iter()
            .filter(|e| {
                e.fields.get("message").map(String::as_str) == Some(message)
                    && e.fields.get(field).map(String::as_str) == Some(value)
            })
            .collect()
    }

    /// The WARN events.
    pub(crate) fn warnings(&self) -> Vec<Recorded> {
        self.events()
            .into_iter()
            .filter(|e| e.level == Level::WARN)
            .collect()
    }

    pub(crate) fn events(&self) -> Vec<Recorded> {
        self.0.lock().unwrap().clone()
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields(BTreeMap::new());
        event.record(&mut fields);
        self.0.lock().unwrap().push(Recorded {
            level: *event.metadata().level(),
            fields: fields.0,
            span: ctx.event_span(event).map(|span| span.name()),
        });
    }
}

struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

/// Writes `text` to the file `name` in a folder of this test process,
/// for policy files.
pub(crate) fn write(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("resilience-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The text of the panic `f` raises; fails the test if it does not panic.
pub(crate) fn panic_text(f: impl FnOnce()) -> String {
    let payload =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).expect_err("expected a panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .expect("a text panic")
}

/// The stats of the `#[safe_mps_op]` function at `path`.
#[cfg(feature = "tch")]
pub(crate) fn device_stats(path: &str) -> resilience_runtime::device::FunctionStats {
    resilience_runtime::device::stats()
        .into_iter()
        .find(|stats| stats.function == path)
        .unwrap_or_else(|| panic!("no stats for {path}"))
}

/// A tensor's values as `f32`, flattened.
#[cfg(feature = "tch")]
pub(crate) fn values(tensor: &tch::Tensor) -> Vec<f32> {
    let on_cpu = tensor.to_device(tch::Device::Cpu).to_kind(tch::Kind::Float);
    Vec::<f32>::try_from(on_cpu.flatten(0, -1)).unwrap()
}
