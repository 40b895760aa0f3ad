//! The watchdog's shared state and its dispatch: each invocation, typed
//! ([`Invocation`]), goes to the module of its kind — an ECS task stopped
//! ([`crate::task_stopped`]), an execution ended ([`crate::execution_ended`]), a
//! callback task state timed out ([`crate::timed_out`]), a `.sync` task state
//! failed ([`crate::sync_verdict`]). EventBridge events come one at a time or in a
//! batch from the SQS queue between the rule and the function (the stack's wiring).

use aws_config::SdkConfig;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use baton::ecs_event::TaskStateChange;
use baton::{CallbackClient, Error};
use serde::Serialize;
use serde_json::Value;

use crate::invocation::{Event, Invocation};

type Listing = Result<std::sync::Arc<baton::aws::RunningTasks>, (&'static str, String)>;

tokio::task_local! {
    /// The cluster's running tasks, listed once for all the records of one SQS batch
    /// ([`Watchdog::handle_batch`]): when a fan-out of 1,000 items is stopped, 1,000
    /// executions end, and listing the whole cluster for each (10 ListTasks and 10
    /// DescribeTasks calls at 1,000 tasks) would ask ECS for 20,000 calls, against its
    /// read rate of 20 a second. A record handled later in the batch sees the listing
    /// made for the first: a task is running in it, or was not yet started then.
    static BATCH_LISTING: std::sync::Arc<tokio::sync::OnceCell<Listing>>;
}

/// What the watchdog did with an event (the Lambda's result, for the logs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// `failed`, `alreadyClosed`, `rejected` or `ignored` (a task stopped);
    /// `cleanedUp` or `ignored` (an execution ended).
    pub action: &'static str,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_arn: Option<String>,
}

/// What [`Watchdog::stop_tasks`] did, and what finding the tasks cost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TasksStopped {
    /// The tasks asked to stop (StopTask, one call each).
    pub stopped: Vec<String>,
    /// The tasks ECS meant to run in the cluster, all of which were looked at.
    pub running: usize,
    /// ListTasks calls made (pages of 100).
    pub list_calls: usize,
    /// DescribeTasks calls made (100 tasks each).
    pub describe_calls: usize,
}

/// Was an upload begun before the task stopped? Unknown means no: never abort an
/// upload that may be a retry's.
pub fn begun_before(
    initiated: Option<&aws_smithy_types::DateTime>,
    stopped_at: &aws_smithy_types::DateTime,
) -> bool {
    initiated.is_some_and(|at| at <= stopped_at)
}

pub struct Watchdog {
    pub(crate) callbacks: CallbackClient,
    pub(crate) ecs: aws_sdk_ecs::Client,
    s3: aws_sdk_s3::Client,
    /// Where a task's logs are, with `{task_id}` replaced (`BATON_TASK_LOGS`).
    pub(crate) logs_template: Option<String>,
    /// The stack's bucket and prefix (`BATON_BUCKET`, `BATON_PREFIX`): where an
    /// ended execution's data is. Without it, status changes are ignored.
    pub(crate) handoff: Option<baton::handoff::HandoffConfig>,
    /// The stack's cluster (`BATON_CLUSTER`): an ended execution's tasks still
    /// running there are stopped. Without it, none is.
    pub(crate) cluster: Option<String>,
    /// Listings of the cluster's running tasks made so far ([`Watchdog::listings`]).
    listings: std::sync::atomic::AtomicUsize,
}

impl Watchdog {
    pub fn new(config: &SdkConfig, logs_template: Option<String>) -> Watchdog {
        Watchdog {
            callbacks: CallbackClient::new(config),
            ecs: baton::aws::ecs_client(config),
            s3: baton::aws::s3_client(config),
            logs_template,
            handoff: None,
            cluster: None,
            listings: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// The watchdog as the stack configures it, from the environment:
    /// `BATON_TASK_LOGS` (where a task's logs are), `BATON_BUCKET` and `BATON_PREFIX`
    /// (clean up after executions that end), `BATON_CLUSTER` (stop their tasks).
    pub fn from_env(config: &SdkConfig) -> Watchdog {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let mut watchdog = Watchdog::new(config, var("BATON_TASK_LOGS"));
        if let Ok(handoff) = baton::handoff::HandoffConfig::from_env() {
            watchdog = watchdog.with_handoff(handoff);
        }
        if let Some(cluster) = var("BATON_CLUSTER") {
            watchdog = watchdog.with_cluster(cluster);
        }
        watchdog
    }

    /// Stop the tasks of executions that end, in this cluster.
    pub fn with_cluster(mut self, cluster: impl Into<String>) -> Watchdog {
        self.cluster = Some(cluster.into());
        self
    }

    /// Clean up after the executions that end (their status change events).
    pub fn with_handoff(mut self, handoff: baton::handoff::HandoffConfig) -> Watchdog {
        self.handoff = Some(handoff);
        self
    }

    /// One invocation, typed by [`Invocation::from_value`] (a `Baton.InvalidInput`
    /// error when it cannot be read). `{"stoppedTask": <States.TaskFailed cause>}`
    /// from the .sync pipeline: the Baton error for it ([`crate::sync_verdict`]).
    /// `{"taskTimedOut": …}` from the callback pipeline: a task state timed out;
    /// stop its tasks, answer the typed error ([`crate::timed_out`]). From the
    /// stack's SQS queue: a batch, answered with the messages to retry
    /// ([`Watchdog::handle_batch`]). Anything else is one EventBridge event
    /// ([`Watchdog::handle_event`]).
    pub async fn handle_invocation(&self, payload: Value) -> Result<Value, Error> {
        match Invocation::from_value(payload)? {
            Invocation::SyncVerdict { cause } => Ok(crate::sync_verdict::answer(&cause)),
            Invocation::TaskTimedOut(state) => Ok(self.task_timed_out(&state).await),
            Invocation::Batch(batch) => Ok(self.handle_batch(batch).await),
            Invocation::Event(event) => {
                let outcome = self.handle_event(event).await?;
                Ok(serde_json::to_value(outcome).expect("an outcome serialises"))
            }
        }
    }

    /// A batch from the stack's SQS queue, answered with the messages to retry
    /// (`ReportBatchItemFailures`): they come back after the queue's visibility
    /// timeout, and land in the dead-letter queue after its maxReceiveCount, never
    /// dropped. Each record's body is one EventBridge event ([`Watchdog::handle`]).
    pub async fn handle_batch(&self, batch: SqsEvent) -> Value {
        // The records at once: one slow event (a callback retried through throttling
        // for a minute) must not hold the others' tokens past their heartbeat window.
        // The fault soak showed it: with 16 executions at once, while some callbacks
        // were answered 500 and retried, failures queued behind them ended as
        // States.Timeout instead of their Baton.* error.
        let listing = std::sync::Arc::new(tokio::sync::OnceCell::new());
        let handled = BATCH_LISTING
            .scope(
                listing,
                futures::future::join_all(batch.records.into_iter().map(|record| async move {
                    let id = record.message_id.clone().unwrap_or_default();
                    let event = serde_json::from_str::<Value>(record.body.as_deref().unwrap_or(""))
                        .map_err(|e| Error::InvalidInput(format!("message {id} is not JSON: {e}")));
                    let handled = match event {
                        Ok(event) => self.handle(event).await.map(|_| ()),
                        Err(e) => Err(e),
                    };
                    (id, handled)
                })),
            )
            .await;
        let mut response = SqsBatchResponse::default();
        for (id, handled) in handled {
            if let Err(e) = handled {
                tracing::error!(message_id = id, error = %e, "event not handled; SQS will deliver it again");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
        // Lambda's own Errors metric never sees these (the invocation succeeds with
        // a partial batch response): count them, for the alarm.
        let retried = response.batch_item_failures.len();
        if retried > 0 {
            baton::metrics::MetricSet::baton()
                .metric(
                    baton::metrics::names::WATCHDOG_EVENTS_RETRIED,
                    baton::metrics::Unit::Count,
                    retried as f64,
                )
                .property("function", "task-watchdog")
                .emit();
        }
        serde_json::to_value(response).expect("a batch response serialises")
    }

    /// One EventBridge event, read ([`Event::from_value`]), decided and acted on
    /// ([`Watchdog::handle_event`]). An `Err` means the event must be delivered
    /// again: returned when Step Functions or ECS could not be reached after the
    /// SDK's retries, or the event could not be read.
    pub async fn handle(&self, event: Value) -> Result<Outcome, Error> {
        self.handle_event(Event::from_value(event)?).await
    }

    /// One EventBridge event: an ECS task stopped ([`crate::task_stopped`]) or an
    /// execution ended ([`crate::execution_ended`]).
    pub async fn handle_event(&self, event: Event) -> Result<Outcome, Error> {
        match event {
            Event::ExecutionEnded(detail) => self.execution_ended(*detail).await,
            Event::TaskStopped(event) => self.task_stopped(*event).await,
        }
    }

    /// Stop the tasks of `cluster` still meant to run whose `BATON_OUTPUT` lies
    /// under one of `scopes` (an ended execution's folders, or one task state's
    /// output). No time bound: a task's `createdAt` is when it entered PENDING
    /// (ECS API reference, Task), which a Fargate task still PROVISIONING when its
    /// execution was stopped reaches after the stop. Only parameters AWS documents:
    /// ListTasks(cluster, desiredStatus RUNNING) every page (100 a page), DescribeTasks by
    /// 100 for the overrides, StopTask with `reason` of the task's `BATON_OUTPUT`
    /// (ECS shows it as the task's stoppedReason). For N tasks running in the
    /// cluster: ceil(N/100) ListTasks, ceil(N/100) DescribeTasks, one StopTask a
    /// task of the scope. Idempotent: a task already stopping is not listed, or
    /// stops again harmlessly. The first refused or failed call is the error.
    /// `ours` narrows the scope further: a redriven execution keeps the tasks of its
    /// new attempt ([`baton::execution_event::task_of_ended_attempt`]).
    pub async fn stop_tasks(
        &self,
        cluster: &str,
        scopes: &[baton::payload::S3Location],
        reason: impl Fn(Option<&str>) -> String,
        ours: impl Fn(&aws_sdk_ecs::types::Task) -> bool,
    ) -> Result<TasksStopped, Error> {
        let service = |operation: &'static str| {
            move |e: String| Error::Service {
                service: "ecs",
                operation,
                message: e,
            }
        };
        let (running, listed_here) = self.running_tasks(cluster).await;
        let running = running.map_err(|(operation, e)| service(operation)(e))?;
        let mut report = TasksStopped {
            stopped: Vec::new(),
            running: running.tasks.len(),
            list_calls: if listed_here { running.list_calls } else { 0 },
            describe_calls: if listed_here {
                running.describe_calls
            } else {
                0
            },
        };
        for task in &running.tasks {
            let detail = TaskStateChange {
                overrides: task.overrides().map(baton::ecs_event::Overrides::from_sdk),
                ..Default::default()
            };
            let in_scope = scopes.iter().any(|scope| detail.output_under(scope)) && ours(task);
            let stopping = task.desired_status() == Some("STOPPED");
            let Some(arn) = task.task_arn().filter(|_| in_scope && !stopping) else {
                continue;
            };
            let reason = reason(detail.override_variable("BATON_OUTPUT"));
            self.ecs
                .stop_task()
                .cluster(cluster)
                .task(arn)
                // StopTask keeps up to 255 characters of the reason.
                .reason(baton::limits::truncate_chars(&reason, 255))
                .send()
                .await
                .map_err(|e| baton::error::display_chain(&e))
                .map_err(service("StopTask"))?;
            tracing::warn!(task_arn = arn, reason = reason.as_str(), "stopped a task");
            report.stopped.push(arn.to_string());
        }
        tracing::info!(
            cluster,
            running = report.running,
            stopped = report.stopped.len(),
            list_tasks_calls = report.list_calls,
            describe_tasks_calls = report.describe_calls,
            "looked for tasks to stop"
        );
        Ok(report)
    }

    /// How many times this watchdog listed the cluster's running tasks (ListTasks
    /// and DescribeTasks over the whole cluster): once per SQS batch of ended
    /// executions, not once per execution.
    pub fn listings(&self) -> usize {
        self.listings.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The cluster's running tasks: listed once per SQS batch (shared by its records,
    /// [`BATCH_LISTING`]), else now. Whether this call made the listing. A failed
    /// listing is shared too: every record of the batch goes back to the queue.
    async fn running_tasks(&self, cluster: &str) -> (Listing, bool) {
        let list = || async {
            self.listings
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            baton::aws::running_tasks(&self.ecs, cluster)
                .await
                .map(std::sync::Arc::new)
        };
        match BATCH_LISTING.try_with(std::sync::Arc::clone) {
            Ok(shared) => {
                let mut listed_here = false;
                let listing = shared
                    .get_or_init(|| async {
                        listed_here = true;
                        list().await
                    })
                    .await
                    .clone();
                (listing, listed_here)
            }
            Err(_) => (list().await, true),
        }
    }

    /// Abort the uploads under `output` (a bucket and key prefix) begun at or before
    /// `stopped_at`; how many. `by` names the task or execution, for the log.
    pub(crate) async fn abort_uploads_begun_before(
        &self,
        output: &baton::payload::S3Location,
        stopped_at: aws_smithy_types::DateTime,
        by: Option<&str>,
    ) -> Result<usize, Error> {
        let service = |operation: &'static str| {
            move |e: String| Error::Service {
                service: "s3",
                operation,
                message: e,
            }
        };
        let mut aborted = 0;
        let (mut key_marker, mut upload_marker) = (None::<String>, None::<String>);
        loop {
            let page = self
                .s3
                .list_multipart_uploads()
                .bucket(&output.bucket)
                .prefix(&output.key)
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(upload_marker.take())
                .send()
                .await
                .map_err(|e| baton::error::display_chain(&e))
                .map_err(service("ListMultipartUploads"))?;
            for upload in page.uploads() {
                let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) else {
                    continue;
                };
                if !begun_before(upload.initiated(), &stopped_at) {
                    continue;
                }
                let aborted_now = self
                    .s3
                    .abort_multipart_upload()
                    .bucket(&output.bucket)
                    .key(key)
                    .upload_id(id)
                    .send()
                    .await;
                match aborted_now {
                    Ok(_) => aborted += 1,
                    // Already gone: aborted or completed by someone else meanwhile.
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_upload()) => {}
                    Err(e) => {
                        return Err(service("AbortMultipartUpload")(
                            baton::error::display_chain(&e),
                        ));
                    }
                }
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(String::from);
            upload_marker = page.next_upload_id_marker().map(String::from);
            if key_marker.is_none() {
                break;
            }
        }
        if aborted > 0 {
            tracing::warn!(
                by,
                bucket = output.bucket,
                prefix = output.key,
                aborted,
                "aborted the multipart uploads left open"
            );
        }
        Ok(aborted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::DateTime;

    #[test]
    fn upload_begun_after_the_stop_is_kept() {
        let stop = DateTime::from_secs_and_nanos(1_796_392_801, 250_000_000);
        let before = DateTime::from_secs(1_796_392_801);
        let after = DateTime::from_secs(1_796_392_802);
        assert!(begun_before(Some(&before), &stop));
        assert!(begun_before(Some(&stop), &stop));
        assert!(!begun_before(Some(&after), &stop), "a retry's upload");
        assert!(!begun_before(None, &stop), "unknown: keep it");
    }
}
