//! The budgeted pipeline: stages with their own caps inside a total budget,
//! optional stages that fail soft, a record of every stage, and partial
//! results when the budget runs out.
//!
//! ```
//! use std::time::Duration;
//! use resilience_runtime::{pipeline, TimeoutError};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let ms = Duration::from_millis;
//! let report = pipeline::run("query", ms(250), |p| async move {
//!     let intent = p.stage("intent", ms(50), async { Ok::<_, TimeoutError>("buy") }).await?;
//!     let out = p.stage("processing", ms(120), async move { Ok(format!("{intent} ACME")) }).await?;
//!     let checked = p.optional("validation", ms(40), async {
//!         tokio::time::sleep(ms(100)).await; // too slow: skipped over
//!         Ok::<_, TimeoutError>(true)
//!     }).await;
//!     assert_eq!(checked, None);
//!     Ok::<_, TimeoutError>(out)
//! })
//! .await;
//! assert_eq!(report.result().as_ref().unwrap(), "buy ACME");
//! assert!(report.partial(), "an optional stage did not complete");
//! assert_eq!(report.stages().len(), 3);
//! println!("{report}");
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use crate::deadline::{self, TimeoutError};
use crate::events::{Warning, may_warn, millis};

/// How a stage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageOutcome {
    /// It returned `Ok`.
    Ok,
    /// Its cap, or the pipeline's budget, ran out first.
    TimedOut,
    /// It returned an error.
    Failed,
    /// Optional, and too little of the budget was left to start it.
    Skipped,
}

/// One stage of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageRecord {
    name: &'static str,
    outcome: StageOutcome,
    elapsed: Duration,
    limit: Duration,
    optional: bool,
}

impl StageRecord {
    /// The stage's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// How it ended.
    pub fn outcome(&self) -> StageOutcome {
        self.outcome
    }

    /// How long it ran.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// The time it was given: its cap, or what was left of the budget.
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// Whether it was optional (fail-soft).
    pub fn optional(&self) -> bool {
        self.optional
    }
}

/// A run's result and the record of its stages.
#[derive(Debug)]
pub struct PipelineReport<T, E> {
    name: &'static str,
    result: Result<T, E>,
    stages: Vec<StageRecord>,
    elapsed: Duration,
    budget: Duration,
    ended_early: bool,
}

impl<T, E> PipelineReport<T, E> {
    /// The pipeline's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The body's result; the timeout error when the budget ran out.
    pub fn result(&self) -> &Result<T, E> {
        &self.result
    }

    /// The body's result, owned.
    pub fn into_result(self) -> Result<T, E> {
        self.result
    }

    /// Whether something is missing: the run ended early (an error, the
    /// budget), or an optional stage did not complete.
    pub fn partial(&self) -> bool {
        self.ended_early
            || self.result.is_err()
            || self
                .stages
                .iter()
                .any(|s| s.optional && s.outcome != StageOutcome::Ok)
    }

    /// Whether the run ended within its budget.
    pub fn within_budget(&self) -> bool {
        !self.ended_early && self.elapsed <= self.budget
    }

    /// How long the run took.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// The budget it had.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// Every stage that started (and optional ones skipped), in order; a
    /// stage the budget cut short is `TimedOut`.
    pub fn stages(&self) -> &[StageRecord] {
        &self.stages
    }
}

impl<T, E> fmt::Display for PipelineReport<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = match (&self.result, self.partial()) {
            (Ok(_), false) => "complete",
            (Ok(_), true) => "partial",
            (Err(_), _) if self.ended_early => "out of budget",
            (Err(_), _) => "failed",
        };
        writeln!(
            f,
            "pipeline `{}`: {status} in {} of {}",
            self.name,
            crate::watchdog::Short(self.elapsed),
            crate::watchdog::Short(self.budget)
        )?;
        writeln!(
            f,
            "  {:<16} {:<10} {:>10} {:>10}",
            "stage", "outcome", "elapsed", "limit"
        )?;
        for stage in &self.stages {
            let outcome = match stage.outcome {
                StageOutcome::Ok => "ok",
                StageOutcome::TimedOut => "timed out",
                StageOutcome::Failed => "failed",
                StageOutcome::Skipped => "skipped",
            };
            let name = if stage.optional {
                format!("{} (opt)", stage.name)
            } else {
                stage.name.to_owned()
            };
            writeln!(
                f,
                "  {name:<16} {outcome:<10} {:>10} {:>10}",
                crate::watchdog::Short(stage.elapsed).to_string(),
                crate::watchdog::Short(stage.limit).to_string()
            )?;
        }
        Ok(())
    }
}

/// The handle a pipeline's body runs its stages through; cheap to clone.
#[derive(Clone)]
pub struct Stages {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    pipeline: &'static str,
    records: Vec<StageRecord>,
    min_useful: Duration,
    /// The deadlines of the stages waiting now, by stage: the run's one
    /// timer is set to the earliest of them and its budget.
    deadlines: Vec<(usize, Instant, std::task::Waker)>,
    /// The latest deadline the run's timer has reached: a waiting stage
    /// whose deadline is not after it has run out, known without a clock
    /// read.
    reached: Option<Instant>,
}

impl Stages {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the least time worth starting an optional stage with (default
    /// 5 ms); with less left, it is skipped.
    pub fn min_useful(&self, least: Duration) -> &Self {
        self.lock().min_useful = least;
        self
    }

    /// Runs a critical stage with `min(cap, what is left of the budget)`:
    /// its error is the caller's to propagate (`?`), and running out of
    /// time gives `E::from(TimeoutError)`.
    pub async fn stage<U, E, F>(&self, name: &'static str, cap: Duration, future: F) -> Result<U, E>
    where
        F: Future<Output = Result<U, E>>,
        E: From<TimeoutError>,
    {
        let (limit, now, cap) = self.limit(name, cap);
        // Whose deadline this is when it is not the stage's own cap.
        let enclosing = deadline::scope().map(|scope| scope.owner);
        let mut record = Recording::new(self, name, limit, false, now);
        let result = self.capped(now + limit, future).await;
        let (outcome, result) = match result {
            Some(Ok(value)) => (StageOutcome::Ok, Ok(value)),
            Some(Err(error)) => (StageOutcome::Failed, Err(error)),
            None => {
                let pipeline = self.lock().pipeline;
                let function = StageSite::of(pipeline, name).function;
                let elapsed = now.elapsed();
                // Cut short by the budget rather than its own cap.
                let inherited = limit < cap;
                let owner = match enclosing {
                    Some(owner) if inherited && !std::ptr::eq(owner, &PIPELINE) => owner.path(),
                    _ if inherited => pipeline,
                    _ => function,
                };
                let error =
                    TimeoutError::new(function, limit, elapsed, inherited).with_owner(owner);
                if let Some(suppressed) = may_warn(function, Warning::Timeout) {
                    tracing::warn!(
                        function,
                        limit_ms = millis(limit),
                        elapsed_ms = millis(elapsed),
                        inherited,
                        owner,
                        suppressed,
                        "deadline exceeded"
                    );
                }
                (StageOutcome::TimedOut, Err(E::from(error)))
            }
        };
        record.end(outcome);
        result
    }

    /// Runs an optional stage with `min(cap, what is left of the budget)`;
    /// `None` when it fails, runs out of time, or is skipped for lack of
    /// time. It never fails the run.
    pub async fn optional<U, E2, F>(
        &self,
        name: &'static str,
        cap: Duration,
        future: F,
    ) -> Option<U>
    where
        F: Future<Output = Result<U, E2>>,
    {
        let (limit, now, _) = self.limit(name, cap);
        // Skipped for lack of budget, not for a small cap.
        let left = deadline::current().map(|at| at.saturating_duration_since(now));
        if left.is_some_and(|left| left < self.lock().min_useful) {
            self.lock().records.push(StageRecord {
                name,
                outcome: StageOutcome::Skipped,
                elapsed: Duration::ZERO,
                limit,
                optional: true,
            });
            return None;
        }
        let mut record = Recording::new(self, name, limit, true, now);
        let (outcome, value) = match self.capped(now + limit, future).await {
            Some(Ok(value)) => (StageOutcome::Ok, Some(value)),
            Some(Err(_)) => (StageOutcome::Failed, None),
            None => (StageOutcome::TimedOut, None),
        };
        record.end(outcome);
        value
    }

    /// `future` until `deadline`: `None` when that passes first.
    fn capped<F: Future>(&self, deadline: Instant, future: F) -> Capped<'_, F> {
        Capped {
            future,
            stages: self,
            deadline,
            waiting: false,
        }
    }

    /// The stage's cap (the policy file's, when it sets one), or what is
    /// left of the budget when that is less; and now.
    fn limit(&self, stage: &str, cap: Duration) -> (Duration, Instant, Duration) {
        let now = Instant::now();
        let cap = if crate::policy::state::loaded() {
            let pipeline = self.lock().pipeline;
            crate::policy::state::stage_cap(pipeline, stage).unwrap_or(cap)
        } else {
            cap
        };
        let left = deadline::current().map(|at| at.saturating_duration_since(now));
        (left.map_or(cap, |left| cap.min(left)), now, cap)
    }
}

/// A stage in progress: recorded when it ends, or as timed out when the
/// pipeline's budget drops it.
struct Recording<'a> {
    stages: &'a Stages,
    name: &'static str,
    limit: Duration,
    optional: bool,
    start: Instant,
    ended: bool,
}

impl<'a> Recording<'a> {
    fn new(
        stages: &'a Stages,
        name: &'static str,
        limit: Duration,
        optional: bool,
        start: Instant,
    ) -> Self {
        Self {
            stages,
            name,
            limit,
            optional,
            start,
            ended: false,
        }
    }

    fn end(&mut self, outcome: StageOutcome) {
        self.ended = true;
        let elapsed = self.start.elapsed();
        let mut inner = self.stages.lock();
        inner.records.push(StageRecord {
            name: self.name,
            outcome,
            elapsed,
            limit: self.limit,
            optional: self.optional,
        });
        let pipeline = inner.pipeline;
        drop(inner);
        let site = StageSite::of(pipeline, self.name);
        let failed = outcome != StageOutcome::Ok;
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        site.monitor.record_now(nanos, failed);
        #[cfg(feature = "metrics")]
        site.durations.update(
            |recorder| crate::telemetry::durations(recorder, site.function),
            |[success, failure]| {
                if failed { failure } else { success }.record(elapsed.as_secs_f64())
            },
        );
    }
}

impl Drop for Recording<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.end(StageOutcome::TimedOut);
        }
    }
}

/// One stage of one pipeline, as the monitor and the metrics know it:
/// `"<pipeline>/<stage>"`. Made at its first run and kept.
struct StageSite {
    pipeline: &'static str,
    stage: &'static str,
    function: &'static str,
    monitor: &'static crate::monitor::Site,
    #[cfg(feature = "metrics")]
    durations: crate::telemetry::Cached<[metrics::Histogram; 2]>,
}

static STAGE_SITES: Mutex<Vec<&'static StageSite>> = Mutex::new(Vec::new());

impl StageSite {
    fn of(pipeline: &'static str, stage: &'static str) -> &'static StageSite {
        let mut sites = STAGE_SITES.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(site) = sites
            .iter()
            .find(|s| s.pipeline == pipeline && s.stage == stage)
        {
            return site;
        }
        let (function, monitor) = crate::monitor::named(&format!("{pipeline}/{stage}"));
        let site = Box::leak(Box::new(StageSite {
            pipeline,
            stage,
            function,
            monitor,
            #[cfg(feature = "metrics")]
            durations: crate::telemetry::Cached::new(),
        }));
        sites.push(site);
        site
    }
}

/// Runs `body` with its stages inside a total `budget`, which nests in any
/// enclosing deadline budget like a timed call. The report holds the
/// body's result (the timeout error when the budget runs out) and every
/// stage that started, also when the run was cut short.
pub async fn run<T, E, F, Fut>(
    name: &'static str,
    budget: Duration,
    body: F,
) -> PipelineReport<T, E>
where
    F: FnOnce(Stages) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: From<TimeoutError>,
{
    let stages = Stages {
        inner: Arc::new(Mutex::new(Inner {
            pipeline: name,
            records: Vec::with_capacity(8),
            min_useful: Duration::from_millis(5),
            deadlines: Vec::new(),
            reached: None,
        })),
    };
    let start = Instant::now();
    // The run's deadline: its budget, or an enclosing one that ends first.
    // Budgets too large for the clock mean "no budget", as in `Timeout`.
    let own = start
        .checked_add(budget)
        .unwrap_or_else(|| start + Duration::from_secs(86400 * 365 * 30));
    let enclosing = deadline::scope().filter(|scope| scope.deadline < own);
    let deadline = enclosing.map_or(own, |scope| scope.deadline);
    let mut run = std::pin::pin!(Run {
        body: Some(body(stages.clone())),
        sleep: tokio::time::sleep_until(deadline),
        deadline,
        enclosing,
        stages: &stages,
        chain: None,
    });
    let outcome = run.as_mut().await;
    let chain = run.as_mut().project().chain.take();
    let elapsed = start.elapsed();
    let (result, ended_early) = match outcome {
        Some(result) => {
            // A stage cut at the budget's instant ends the body first: an
            // error then is the budget running out all the same.
            let out = result.is_err() && Instant::now() >= deadline;
            (result, out)
        }
        None => {
            let limit = deadline.saturating_duration_since(start);
            let inherited = enclosing.is_some();
            let owner = enclosing.map_or(name, |scope| scope.owner.path());
            if let Some(suppressed) = may_warn(name, Warning::Timeout) {
                tracing::warn!(
                    function = name,
                    limit_ms = millis(limit),
                    elapsed_ms = millis(elapsed),
                    inherited,
                    owner,
                    chain = chain.as_ref().map(ToString::to_string).unwrap_or_default(),
                    suppressed,
                    "deadline exceeded"
                );
            }
            let error = TimeoutError::new(name, limit, elapsed, inherited)
                .with_owner(owner)
                .with_chain(chain);
            (Err(E::from(error)), true)
        }
    };
    let stages = std::mem::take(&mut stages.lock().records);
    PipelineReport {
        name,
        result,
        stages,
        elapsed,
        budget,
        ended_early,
    }
}

/// The function a pipeline's deadlines name as their owner in the budget
/// scope (nested timed calls see it); errors name the pipeline.
static PIPELINE: crate::registry::Function =
    crate::registry::Function::new("resilience_runtime::pipeline", "pipeline", false, &[]);

pin_project_lite::pin_project! {
    /// A whole run: the body under the budget, and the run's one timer, set
    /// to the budget's deadline or to the earliest stage deadline before it.
    /// Resolves to `None` when the budget runs out.
    struct Run<'a, Fut> {
        #[pin]
        body: Option<Fut>,
        #[pin]
        sleep: tokio::time::Sleep,
        deadline: Instant,
        enclosing: Option<deadline::Scope>,
        stages: &'a Stages,
        // What was in flight under the budget when it ran out.
        chain: Option<crate::watchdog::Chain>,
    }
}

impl<Fut: Future> Future for Run<'_, Fut> {
    type Output = Option<Fut::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let id = self.as_ref().get_ref() as *const Self as usize;
        let mut this = self.project();
        let scope = this.enclosing.unwrap_or(deadline::Scope {
            deadline: *this.deadline,
            owner: &PIPELINE,
            id,
        });
        let mut out_of_budget = false;
        loop {
            let Some(body) = this.body.as_mut().as_pin_mut() else {
                panic!("a pipeline run polled after it ended");
            };
            if let Poll::Ready(output) = deadline::with_budget(Some(scope), || body.poll(cx)) {
                this.body.set(None);
                return Poll::Ready(Some(output));
            }
            if out_of_budget {
                // Its stages saw the budget end and the body still waits.
                *this.chain = crate::watchdog::chain_inside(scope.id);
                this.body.set(None);
                return Poll::Ready(None);
            }
            // The next deadline: the budget's, or a waiting stage's not yet
            // reached (one reached but not polled since, in another task or
            // held aside, has been woken and is not waited for again).
            let next = {
                let inner = this.stages.lock();
                let reached = inner.reached;
                inner
                    .deadlines
                    .iter()
                    .map(|(_, at, _)| *at)
                    .filter(|at| Some(*at) > reached)
                    .fold(*this.deadline, Instant::min)
            };
            if this.sleep.deadline() != next {
                this.sleep.as_mut().reset(next);
            }
            // Unconstrained, so that a body that spends tokio's cooperative
            // budget cannot hold off its own deadlines.
            let mut sleep = tokio::task::coop::unconstrained(this.sleep.as_mut());
            if Pin::new(&mut sleep).poll(cx).is_pending() {
                return Poll::Pending;
            }
            // A deadline passed: the stages it ends see it when polled
            // again, which is now for those in this task; the budget's own
            // ends the run unless the body then completes.
            let mut inner = this.stages.lock();
            inner.reached = Some(next);
            for (_, at, waker) in &inner.deadlines {
                if *at <= next {
                    waker.wake_by_ref();
                }
            }
            out_of_budget = next >= *this.deadline;
        }
    }
}

pin_project_lite::pin_project! {
    /// A stage's future until its deadline; `None` when that passes first.
    /// It holds no timer: while it waits, its deadline is among the run's,
    /// whose timer wakes the task.
    struct Capped<'a, F> {
        #[pin]
        future: F,
        stages: &'a Stages,
        deadline: Instant,
        waiting: bool,
    }

    impl<F> PinnedDrop for Capped<'_, F> {
        fn drop(this: Pin<&mut Self>) {
            if this.waiting {
                let key = this.as_ref().get_ref() as *const Capped<'_, F> as usize;
                this.stages.lock().deadlines.retain(|(stage, _, _)| *stage != key);
            }
        }
    }
}

impl<F: Future> Future for Capped<'_, F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let key = self.as_ref().get_ref() as *const Self as usize;
        let this = self.project();
        // A stage whose deadline is the enclosing one's keeps that scope,
        // so that the calls inside it stay in that deadline's chain.
        let scope = match deadline::scope() {
            Some(enclosing) if enclosing.deadline == *this.deadline => enclosing,
            _ => deadline::Scope {
                deadline: *this.deadline,
                owner: &PIPELINE,
                id: key,
            },
        };
        let polled = deadline::with_budget(Some(scope), || this.future.poll(cx));
        let done = match polled {
            Poll::Ready(output) => Some(output),
            // The run's timer reached this deadline (a stage that starts
            // with none left is reached at once: its timer is in the past).
            Poll::Pending if this.stages.lock().reached >= Some(*this.deadline) => None,
            Poll::Pending => {
                let mut inner = this.stages.lock();
                match inner
                    .deadlines
                    .iter_mut()
                    .find(|(stage, _, _)| *stage == key)
                {
                    Some((_, _, waker)) => waker.clone_from(cx.waker()),
                    None => inner
                        .deadlines
                        .push((key, *this.deadline, cx.waker().clone())),
                }
                *this.waiting = true;
                return Poll::Pending;
            }
        };
        if *this.waiting {
            *this.waiting = false;
            this.stages
                .lock()
                .deadlines
                .retain(|(stage, _, _)| *stage != key);
        }
        Poll::Ready(done)
    }
}
