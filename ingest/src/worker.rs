//! The long-running SQS worker: `kerchunk-nos worker`.
//!
//! One poller per queue (new-object messages -> [`steps::extract_single`],
//! optionally reference-updated messages -> [`steps::update_model_run`]),
//! sharing one bound on messages in flight. Per message:
//!
//! * the visibility timeout is extended (ChangeMessageVisibility) every half
//!   timeout while the work runs, so a slow file is not handed to a second
//!   worker;
//! * the message is deleted only after the step returned success, i.e.
//!   after its outputs were written (S3 PUTs are durable when acknowledged);
//! * a failure (permanent or transient) leaves the message alone: it
//!   reappears after the visibility timeout and the queue's redrive policy
//!   moves it to the dead-letter queue after `maxReceiveCount` receives, so
//!   a poison message never blocks the others.
//!
//! A transient failure is retried inside the attempt (bounded, exponential
//! backoff with jitter, visibility still extended) before the message is
//! given back, so a good file does not use up its receives on a passing
//! fault.
//!
//! The visibility timeout defaults to the queue's own (read once per queue
//! with GetQueueAttributes); `--visibility-timeout` overrides it.
//!
//! SIGTERM/SIGINT stop the polling; a long poll already open is finished
//! (not abandoned, which would hide a message sent meanwhile for a whole
//! visibility timeout) and what it received is returned to the queue at
//! once (visibility 0); messages in flight finish (and are deleted) before
//! the process exits. `--max-messages` and
//! `--exit-when-idle` (every queue reports no visible and no in-flight
//! messages, twice in a row) end the loop for tests and batch jobs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_sqs::types::{Message, QueueAttributeName};
use serde::Serialize;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{Instrument as _, debug, error, info, info_span, warn};

use crate::config::Pipeline;
use crate::steps::{self, StepError};
use crate::store::ObjectStore;

/// What a queue's messages mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueRole {
    /// Source-bucket "new object" notifications.
    Extract,
    /// Destination-bucket "reference written" notifications.
    Update,
}

impl QueueRole {
    fn name(self) -> &'static str {
        match self {
            QueueRole::Extract => "extract_single",
            QueueRole::Update => "update_model_run",
        }
    }
}

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub queue: String,
    pub update_queue: Option<String>,
    /// Messages processed at once (over both queues).
    pub concurrency: usize,
    /// Seconds a received message stays hidden; extended while work runs.
    /// `None`: the queue's own setting.
    pub visibility_timeout: Option<i32>,
    /// Long-poll wait (0-20 s).
    pub wait_seconds: i32,
    /// Stop after this many messages were handled (success or failure).
    pub max_messages: Option<u64>,
    /// Stop when every queue is empty and nothing is in flight.
    pub exit_when_idle: bool,
    /// Seconds between idle checks.
    pub idle_check_seconds: u64,
    /// Runs of a step per received message while it fails transiently.
    pub step_attempts: u32,
    /// First delay between those runs (doubled each time, jittered).
    pub step_backoff: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            queue: String::new(),
            update_queue: None,
            concurrency: 4,
            visibility_timeout: None,
            wait_seconds: 20,
            max_messages: None,
            exit_when_idle: false,
            idle_check_seconds: 2,
            step_attempts: 3,
            step_backoff: Duration::from_secs(1),
        }
    }
}

/// Counters reported when the worker stops.
#[derive(Debug, Default, Serialize)]
pub struct WorkerStats {
    pub received: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub deleted: u64,
}

#[derive(Default)]
struct Counters {
    /// Messages being processed right now.
    in_flight: AtomicU64,
    received: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    deleted: AtomicU64,
}

/// Where extract_single writes.
#[derive(Debug, Clone)]
pub struct Destination {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: String,
}

/// An SQS client with the same TLS setup and endpoint rules as the S3
/// stores (compiled-in webpki roots; `AWS_ENDPOINT_URL(_SQS)` or the
/// `endpoint_url` option; standard credential chain, never anonymous).
pub async fn sqs_client(opts: &hdf5_lite::SourceOptions) -> Result<aws_sdk_sqs::Client, String> {
    use aws_config::retry::RetryConfig;
    use aws_config::timeout::TimeoutConfig;
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};

    let region = opts
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok().filter(|v| !v.is_empty()))
        .or_else(|| {
            std::env::var("AWS_DEFAULT_REGION")
                .ok()
                .filter(|v| !v.is_empty())
        })
        .unwrap_or_else(|| "us-east-1".to_string());
    let trust = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(hdf5_lite::source::webpki_roots_pem().into_bytes());
    let tls_context = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .map_err(|e| format!("cannot build TLS context: {e}"))?;
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(tls_context)
        .build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region))
        .http_client(http_client)
        .retry_config(RetryConfig::standard().with_max_attempts(opts.max_attempts.max(1)))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(opts.connect_timeout)
                // A long poll holds the request open for up to 20 s.
                .operation_attempt_timeout(Duration::from_secs(40))
                .build(),
        );
    if let Some(ep) = &opts.endpoint_url {
        loader = loader.endpoint_url(ep);
    }
    let shared = loader.load().await;
    Ok(aws_sdk_sqs::Client::new(&shared))
}

struct Shared {
    p: Arc<Pipeline>,
    sqs: aws_sdk_sqs::Client,
    opts: WorkerOptions,
    dest: Destination,
    permits: Arc<Semaphore>,
    counters: Counters,
    stop: watch::Sender<bool>,
}

/// Runs until `shutdown` resolves, `max_messages` were handled, or (with
/// `exit_when_idle`) the queues are drained.
pub async fn run(
    p: Arc<Pipeline>,
    sqs: aws_sdk_sqs::Client,
    opts: WorkerOptions,
    dest: Destination,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> WorkerStats {
    let (stop, _) = watch::channel(false);
    let shared = Arc::new(Shared {
        p,
        sqs,
        permits: Arc::new(Semaphore::new(opts.concurrency.max(1))),
        opts,
        dest,
        counters: Counters::default(),
        stop,
    });
    {
        let s = shared.clone();
        tokio::spawn(async move {
            shutdown.await;
            info!("shutdown requested: finishing messages in flight");
            let _ = s.stop.send(true);
        });
    }
    let mut pollers = JoinSet::new();
    let mut queues = vec![(shared.opts.queue.clone(), QueueRole::Extract)];
    if let Some(q) = &shared.opts.update_queue {
        queues.push((q.clone(), QueueRole::Update));
    }
    for (url, role) in queues.clone() {
        pollers.spawn(poll(shared.clone(), url, role));
    }
    if shared.opts.exit_when_idle {
        let s = shared.clone();
        let urls: Vec<String> = queues.into_iter().map(|(u, _)| u).collect();
        tokio::spawn(async move { idle_watch(s, urls).await });
    }
    while pollers.join_next().await.is_some() {}
    let c = &shared.counters;
    WorkerStats {
        received: c.received.load(Ordering::Relaxed),
        succeeded: c.succeeded.load(Ordering::Relaxed),
        failed: c.failed.load(Ordering::Relaxed),
        deleted: c.deleted.load(Ordering::Relaxed),
    }
}

/// Stops the worker once every queue has had no visible and no in-flight
/// messages for two consecutive checks and this worker holds none.
async fn idle_watch(s: Arc<Shared>, urls: Vec<String>) {
    let mut rx = s.stop.subscribe();
    let mut quiet = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(s.opts.idle_check_seconds.max(1))) => {}
            _ = rx.changed() => return,
        }
        let mut empty = s.counters.in_flight.load(Ordering::SeqCst) == 0;
        if empty {
            for url in &urls {
                match queue_depth(&s.sqs, url).await {
                    Ok(0) => {}
                    Ok(n) => {
                        debug!(queue = %url, messages = n, "queue not empty");
                        empty = false;
                    }
                    Err(e) => {
                        warn!(queue = %url, error = %e, "cannot read queue attributes");
                        empty = false;
                    }
                }
            }
        }
        quiet = if empty { quiet + 1 } else { 0 };
        if quiet >= 2 {
            info!("queues drained: exiting (--exit-when-idle)");
            let _ = s.stop.send(true);
            return;
        }
    }
}

/// Visible + in-flight + delayed messages of a queue.
async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<u64, String> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(&e).to_string())?;
    let mut n = 0;
    if let Some(attrs) = out.attributes() {
        for v in attrs.values() {
            n += v.parse::<u64>().unwrap_or(0);
        }
    }
    Ok(n)
}

/// The queue's own `VisibilityTimeout`.
async fn queue_visibility(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<i32, String> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .send()
        .await
        .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(&e).to_string())?;
    out.attributes()
        .and_then(|a| a.get(&QueueAttributeName::VisibilityTimeout))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| "no VisibilityTimeout attribute".to_string())
}

/// Makes received messages visible again at once (used when stopping).
async fn give_back(sqs: &aws_sdk_sqs::Client, url: &str, messages: &[Message]) {
    for m in messages {
        let Some(receipt) = m.receipt_handle() else {
            continue;
        };
        match sqs
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await
        {
            Ok(_) => info!(
                id = m.message_id().unwrap_or("?"),
                "stopping: message returned to the queue"
            ),
            Err(e) => {
                warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "stopping: cannot return message")
            }
        }
    }
}

async fn poll(s: Arc<Shared>, url: String, role: QueueRole) {
    let mut rx = s.stop.subscribe();
    let vt = match s.opts.visibility_timeout {
        Some(v) => v.max(1),
        None => match queue_visibility(&s.sqs, &url).await {
            Ok(v) => v.max(1),
            Err(e) => {
                warn!(queue = %url, error = %e, "cannot read the queue's visibility timeout; using 30 s");
                30
            }
        },
    };
    info!(queue = %url, visibility_timeout = vt, "polling");
    let mut tasks = JoinSet::new();
    let mut backoff = Duration::from_millis(500);
    loop {
        if *rx.borrow() {
            break;
        }
        if let Some(max) = s.opts.max_messages
            && s.counters.received.load(Ordering::Relaxed) >= max
        {
            let _ = s.stop.send(true);
            break;
        }
        // Hold one permit before polling, so a received message never
        // waits hidden behind others.
        let first = tokio::select! {
            p = s.permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = rx.changed() => continue,
        };
        let mut want = 1 + s.permits.available_permits().min(9);
        if let Some(max) = s.opts.max_messages {
            let left = max.saturating_sub(s.counters.received.load(Ordering::Relaxed));
            want = want.min(usize::try_from(left).unwrap_or(usize::MAX).max(1));
        }
        let recv = s
            .sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(i32::try_from(want).unwrap_or(1))
            .set_visibility_timeout(s.opts.visibility_timeout)
            .message_system_attribute_names(
                aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
            )
            .wait_time_seconds(s.opts.wait_seconds)
            .send();
        let mut recv = std::pin::pin!(recv);
        let (result, stopping) = tokio::select! {
            r = &mut recv => (r, false),
            // Finish the open long poll rather than abandon it: a message
            // it returns would otherwise stay hidden for a whole timeout.
            _ = rx.changed() => (recv.await, true),
        };
        if stopping {
            if let Ok(out) = &result {
                give_back(&s.sqs, &url, out.messages()).await;
            }
            drop(first);
            break;
        }
        let messages = match result {
            Ok(out) => {
                backoff = Duration::from_millis(500);
                out.messages.unwrap_or_default()
            }
            Err(e) => {
                warn!(queue = %url, error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "ReceiveMessage failed");
                drop(first);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(20));
                continue;
            }
        };
        let mut first = Some(first);
        for m in messages {
            let permit = match first.take() {
                Some(p) => p,
                None => match s.permits.clone().acquire_owned().await {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            s.counters.received.fetch_add(1, Ordering::Relaxed);
            s.counters.in_flight.fetch_add(1, Ordering::SeqCst);
            let s2 = s.clone();
            let url2 = url.clone();
            let span = info_span!(
                "message",
                queue = role.name(),
                id = m.message_id().unwrap_or("?")
            );
            tasks.spawn(
                async move {
                    handle(&s2, &url2, role, vt, m).await;
                    s2.counters.in_flight.fetch_sub(1, Ordering::SeqCst);
                    drop(permit);
                }
                .instrument(span),
            );
        }
        // Reap finished tasks without waiting.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

/// `base * 2^(n-1)`, capped at 30 s, uniform in `[d/2, d]`.
fn jittered(base: Duration, n: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let d = base
        .saturating_mul(1u32 << n.saturating_sub(1).min(10))
        .min(Duration::from_secs(30));
    let r = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    d.mul_f64(0.5 + 0.5 * ((r >> 11) as f64 / (1u64 << 53) as f64))
}

async fn handle(s: &Shared, url: &str, role: QueueRole, vt: i32, m: Message) {
    let Some(receipt) = m.receipt_handle().map(str::to_string) else {
        warn!("message without receipt handle");
        return;
    };
    let body = m.body().unwrap_or_default().to_string();
    let started = std::time::Instant::now();

    // Keep the message hidden while the work runs.
    let extender = {
        let sqs = s.sqs.clone();
        let url = url.to_string();
        let receipt = receipt.clone();
        tokio::spawn(async move {
            let every = Duration::from_millis(u64::try_from(vt).unwrap_or(1) * 500);
            loop {
                tokio::time::sleep(every).await;
                match sqs
                    .change_message_visibility()
                    .queue_url(&url)
                    .receipt_handle(&receipt)
                    .visibility_timeout(vt)
                    .send()
                    .await
                {
                    Ok(_) => debug!(seconds = vt, "visibility extended"),
                    Err(e) => {
                        warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "ChangeMessageVisibility failed")
                    }
                }
            }
        })
    };
    let mut attempt = 1;
    let result: Result<steps::Outcome, StepError> = loop {
        let r = match role {
            QueueRole::Extract => {
                steps::extract_single(&s.p, &body, &*s.dest.store, &s.dest.prefix).await
            }
            QueueRole::Update => steps::update_model_run(&s.p, &body).await,
        };
        match r {
            Err(e) if e.is_transient() && attempt < s.opts.step_attempts => {
                let delay = jittered(s.opts.step_backoff, attempt);
                info!(attempt, error = %e, ?delay, "transient failure: retrying within this receive");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            other => break other,
        }
    };
    extender.abort();
    let secs = started.elapsed().as_secs_f64();
    match result {
        Ok(outcome) => {
            s.counters.succeeded.fetch_add(1, Ordering::Relaxed);
            info!(
                written = outcome.written.len(),
                skipped = outcome.skipped.len(),
                test_event = outcome.test_event,
                seconds = secs,
                "message done"
            );
            for attempt in 1..=5u32 {
                match s
                    .sqs
                    .delete_message()
                    .queue_url(url)
                    .receipt_handle(&receipt)
                    .send()
                    .await
                {
                    Ok(_) => {
                        s.counters.deleted.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    Err(e) => {
                        warn!(attempt, error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "DeleteMessage failed");
                        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                    }
                }
            }
            error!("message done but not deleted: it will be redelivered (outputs are idempotent)");
        }
        Err(e) => {
            s.counters.failed.fetch_add(1, Ordering::Relaxed);
            let receives = m
                .attributes()
                .and_then(|a| {
                    a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
                })
                .cloned()
                .unwrap_or_default();
            warn!(
                error = %e,
                transient = e.is_transient(),
                receives = %receives,
                seconds = secs,
                "message failed: left on the queue for retry / dead-letter queue"
            );
        }
    }
}
