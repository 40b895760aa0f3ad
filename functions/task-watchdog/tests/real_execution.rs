//! The watchdog against real executions waiting on task tokens (moto).

use std::time::Duration;

use moto_harness::{Moto, TokenMachine, sample_event};
use serde_json::Value;
use task_watchdog::Watchdog;

fn event_with_token(file: &str, token: &str) -> Value {
    let mut event = sample_event(file);
    if let Some(overrides) = event["detail"]["overrides"]["containerOverrides"].as_array_mut() {
        for o in overrides {
            if let Some(env) = o["environment"].as_array_mut() {
                for kv in env {
                    if kv["name"] == "TASK_TOKEN" {
                        kv["value"] = token.into();
                    }
                }
            }
        }
    }
    event
}

const SETTLE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdog_fails_waiting_executions_with_the_right_error() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let machine = TokenMachine::create(&moto, &config, "watchdog", None).await;
    let watchdog = Watchdog::new(&config, Some("/ecs/baton/worker/{task_id}".into()));

    let failing = [
        ("ecs-task-failed-to-start.json", "Baton.TaskFailedToStart"),
        ("ecs-out-of-memory.json", "Baton.OutOfMemory"),
        ("ecs-container-exited.json", "Baton.ContainerExited"),
        ("ecs-no-callback.json", "Baton.NoCallback"),
        ("ecs-user-stopped.json", "Baton.TaskStopped"),
        ("ecs-spot-interrupted.json", "Baton.TaskStopped"),
        ("ecs-termination-notice.json", "Baton.TaskStopped"),
        ("ecs-token-in-sidecar.json", "Baton.ContainerExited"),
    ];
    for (file, want) in failing {
        let name = file.trim_end_matches(".json");
        let (execution, token) = machine.start(name).await;
        let outcome = watchdog
            .handle(event_with_token(file, &token))
            .await
            .unwrap();
        assert_eq!(outcome.action, "failed", "{file}: {outcome:?}");
        assert_eq!(outcome.error, Some(want), "{file}");
        let (status, error) = machine.settle(&execution, SETTLE).await;
        assert_eq!(
            (status.as_str(), error.as_deref()),
            ("FAILED", Some(want)),
            "{file}"
        );

        // A duplicate delivery changes nothing.
        watchdog
            .handle(event_with_token(file, &token))
            .await
            .unwrap();
        let (status, error) = machine.settle(&execution, SETTLE).await;
        assert_eq!(
            (status.as_str(), error.as_deref()),
            ("FAILED", Some(want)),
            "{file} duplicate"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_warnings_and_tasks_without_tokens_are_left_alone() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let machine = TokenMachine::create(&moto, &config, "ignored", None).await;
    let watchdog = Watchdog::new(&config, None);
    for file in ["ecs-spot-warning-running.json", "ecs-no-token.json"] {
        let (execution, token) = machine.start(file.trim_end_matches(".json")).await;
        let outcome = watchdog
            .handle(event_with_token(file, &token))
            .await
            .unwrap();
        assert_eq!(outcome.action, "ignored", "{file}: {outcome:?}");
        let (status, _) = machine.settle(&execution, Duration::from_secs(1)).await;
        assert_eq!(status, "RUNNING", "{file}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_called_back_is_not_failed_later() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let machine = TokenMachine::create(&moto, &config, "calledback", None).await;
    let watchdog = Watchdog::new(&config, None);
    let (execution, token) = machine.start("called-back").await;
    machine
        .sfn
        .send_task_success()
        .task_token(&token)
        .output(r#"{"inline":"done"}"#)
        .send()
        .await
        .unwrap();
    let (status, _) = machine.settle(&execution, SETTLE).await;
    assert_eq!(status, "SUCCEEDED");
    // The container then exits 0 and ECS reports it STOPPED.
    let outcome = watchdog
        .handle(event_with_token("ecs-no-callback.json", &token))
        .await
        .unwrap();
    assert_ne!(outcome.action, "ignored");
    let (status, error) = machine.settle(&execution, SETTLE).await;
    assert_eq!((status.as_str(), error), ("SUCCEEDED", None));
}

/// A Fargate task in moto's cluster `baton` (created on first use) with `env` in
/// its `worker` container's overrides.
async fn run_task(
    moto: &Moto,
    ecs: &aws_sdk_ecs::Client,
    env: &[(&str, &str)],
) -> aws_sdk_ecs::types::Task {
    use aws_sdk_ecs::types::{
        AwsVpcConfiguration, Compatibility, ContainerDefinition, ContainerOverride, KeyValuePair,
        LaunchType, NetworkConfiguration, NetworkMode, TaskOverride,
    };
    let (subnet, group) = moto.default_network();
    ecs.create_cluster()
        .cluster_name("baton")
        .send()
        .await
        .unwrap();
    ecs.register_task_definition()
        .family("baton-task1")
        .requires_compatibilities(Compatibility::Fargate)
        .network_mode(NetworkMode::Awsvpc)
        .cpu("256")
        .memory("512")
        .container_definitions(
            ContainerDefinition::builder()
                .name("worker")
                .image("baton-worker")
                .memory(512)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut container = ContainerOverride::builder().name("worker");
    for (name, value) in env {
        container =
            container.environment(KeyValuePair::builder().name(*name).value(*value).build());
    }
    let run = ecs
        .run_task()
        .cluster("baton")
        .task_definition("baton-task1")
        .launch_type(LaunchType::Fargate)
        .network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(
                    AwsVpcConfiguration::builder()
                        .subnets(&subnet)
                        .security_groups(&group)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .overrides(
            TaskOverride::builder()
                .container_overrides(container.build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    run.tasks()[0].clone()
}

/// A task that writes to `output` (its `BATON_OUTPUT`), as the state machines run it.
async fn run_task_writing(
    moto: &Moto,
    ecs: &aws_sdk_ecs::Client,
    output: &str,
) -> aws_sdk_ecs::types::Task {
    run_task(moto, ecs, &[("BATON_OUTPUT", output)]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_without_overrides_are_completed_from_describe_tasks() {
    // moto's ECS keeps RunTask's overrides; an event that lost them is looked up.
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let machine = TokenMachine::create(&moto, &config, "describe", None).await;
    let (execution, token) = machine.start("describe").await;

    let ecs = aws_sdk_ecs::Client::new(&config);
    let task = run_task(&moto, &ecs, &[("TASK_TOKEN", &token)]).await;

    let mut event = event_with_token("ecs-container-exited.json", "unused");
    let detail = event["detail"].as_object_mut().unwrap();
    detail.remove("overrides");
    detail.insert("taskArn".into(), task.task_arn().unwrap().into());
    detail.insert("clusterArn".into(), task.cluster_arn().unwrap().into());

    let watchdog = Watchdog::new(&config, None);
    let outcome = watchdog.handle(event).await.unwrap();
    assert_eq!(outcome.action, "failed", "{outcome:?}");
    let (status, error) = machine.settle(&execution, SETTLE).await;
    assert_eq!(
        (status.as_str(), error.as_deref()),
        ("FAILED", Some("Baton.ContainerExited"))
    );
}

#[tokio::test]
async fn a_body_that_is_not_an_ecs_event_is_a_clear_error() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let watchdog = Watchdog::new(&config, None);
    let err = watchdog
        .handle(serde_json::json!({"input": "s3://b/k"}))
        .await
        .unwrap_err();
    assert_eq!(err.name(), "Baton.InvalidInput");
}

/// moto with the bucket `baton-data`: the server (keep it alive), its SDK
/// configuration and an S3 client.
async fn with_data_bucket() -> (Moto, aws_config::SdkConfig, aws_sdk_s3::Client) {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    moto.create_bucket("baton-data");
    let s3 = baton::aws::s3_client(&config);
    (moto, config, s3)
}

/// Begin a multipart upload in `baton-data`; its id.
async fn begin_upload(s3: &aws_sdk_s3::Client, key: &str) -> String {
    s3.create_multipart_upload()
        .bucket("baton-data")
        .key(key)
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_string()
}

/// The uploads open in `baton-data`, as (key, id), sorted.
async fn open_uploads(s3: &aws_sdk_s3::Client) -> Vec<(String, String)> {
    let mut open: Vec<(String, String)> = s3
        .list_multipart_uploads()
        .bucket("baton-data")
        .send()
        .await
        .unwrap()
        .uploads()
        .iter()
        .map(|u| {
            (
                u.key().unwrap().to_string(),
                u.upload_id().unwrap().to_string(),
            )
        })
        .collect();
    open.sort();
    open
}

/// Found by the fault soak: a task killed while its output upload was under way left
/// the multipart upload open. The watchdog aborts the uploads under the stopped
/// task's `BATON_OUTPUT` begun before it stopped, and no other. (Uploads begun after
/// the stop, a retry's, are kept: plain moto dates every upload 2010-11-10, so that
/// half is `upload_begun_after_the_stop_is_kept` in the handler's unit tests and
/// local/compat.py's `fix_s3_multipart_uploads_all_begun_in_2010`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_a_stopped_task_left_open_are_aborted_and_no_others() {
    use aws_smithy_types::date_time::{DateTime, Format};

    let (_moto, config, s3) = with_data_bucket().await;
    let _killed = begin_upload(&s3, "executions/demo-1/task1/output").await;
    let other_task = begin_upload(&s3, "executions/demo-1/task2/output").await;
    let stopped_at = DateTime::from(std::time::SystemTime::now())
        .fmt(Format::DateTime)
        .unwrap();

    let mut event = sample_event("ecs-container-exited.json");
    event["detail"]["stoppedAt"] = stopped_at.into();
    let watchdog = Watchdog::new(&config, None);
    let want = vec![("executions/demo-1/task2/output".to_string(), other_task)];
    for delivery in ["first", "again"] {
        watchdog.handle(event.clone()).await.unwrap();
        assert_eq!(open_uploads(&s3).await, want, "{delivery} delivery");
    }
}

/// An execution that ended (a status change event) leaves no upload open under its
/// prefix, whoever began it: a task killed mid-upload whose STOPPED event was lost
/// (found by the fault soak: the heartbeat failed the execution, the upload stayed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_execution_leaves_no_upload_open_and_others_keep_theirs() {
    use aws_smithy_types::DateTime;

    let (_moto, config, s3) = with_data_bucket().await;
    for key in [
        "executions/demo-1/task1/output",
        "executions/demo-1/task2/output",
        "executions/demo-10/task1/output",
    ] {
        begin_upload(&s3, key).await;
    }
    let watchdog = Watchdog::new(&config, None)
        .with_handoff(baton::handoff::HandoffConfig::for_bucket("baton-data"));
    let mut event = sample_event("sfn-execution-failed.json");
    event["detail"]["stopDate"] = DateTime::from(std::time::SystemTime::now())
        .to_millis()
        .unwrap()
        .into();
    let open = || async {
        open_uploads(&s3)
            .await
            .into_iter()
            .map(|(key, _)| key)
            .collect::<Vec<_>>()
    };
    event["detail"]["status"] = "RUNNING".into();
    assert_eq!(
        watchdog.handle(event.clone()).await.unwrap().action,
        "ignored"
    );
    assert_eq!(
        open().await.len(),
        3,
        "a running execution keeps its uploads"
    );
    event["detail"]["status"] = "FAILED".into();
    for delivery in ["first", "again"] {
        let outcome = watchdog.handle(event.clone()).await.unwrap();
        assert_eq!(outcome.action, "cleanedUp", "{delivery}: {outcome:?}");
        assert_eq!(
            open().await,
            vec!["executions/demo-10/task1/output".to_string()],
            "{delivery}: only demo-1's uploads go"
        );
    }
}

/// Each task's (desired status, stopped reason), by ARN.
async fn statuses(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    tasks: &[&aws_sdk_ecs::types::Task],
) -> Vec<(String, Option<String>)> {
    let described = ecs
        .describe_tasks()
        .cluster(cluster)
        .set_tasks(Some(
            tasks
                .iter()
                .map(|t| t.task_arn().unwrap().to_string())
                .collect(),
        ))
        .send()
        .await
        .unwrap();
    tasks
        .iter()
        .map(|task| {
            let t = described
                .tasks()
                .iter()
                .find(|t| t.task_arn() == task.task_arn())
                .unwrap();
            (
                t.desired_status().unwrap().to_string(),
                t.stopped_reason().map(String::from),
            )
        })
        .collect()
}

/// The watchdog as the stack runs it: Baton's data in `baton-data`, tasks in `cluster`.
fn cleaning_up(config: &aws_config::SdkConfig, cluster: &str) -> Watchdog {
    Watchdog::new(config, None)
        .with_handoff(baton::handoff::HandoffConfig::for_bucket("baton-data"))
        .with_cluster(cluster)
}

fn stopped(reason: &str) -> (String, Option<String>) {
    ("STOPPED".into(), Some(reason.into()))
}

/// An execution that ended leaves no task running: the tasks whose `BATON_OUTPUT`
/// lies in its folder are stopped, with a reason naming it; other executions' and
/// non-Baton tasks are not, even with a folder of the same name in another bucket.
/// Found with ListTasks(desiredStatus RUNNING) and DescribeTasks alone: Step
/// Functions' ECS integration documents no `StartedBy`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_execution_leaves_no_task_running_and_others_keep_theirs() {
    let (moto, config, _s3) = with_data_bucket().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let event = sample_event("sfn-execution-failed.json");
    let mut tasks = Vec::new();
    for output in [
        "s3://baton-data/executions/demo-1/task2/",
        "s3://baton-data/executions/demo-10/task1/",
        "s3://someone-else/executions/demo-1/task1/",
    ] {
        tasks.push(run_task_writing(&moto, &ecs, output).await);
    }
    let [mine, other, foreign] = tasks.try_into().unwrap();
    let cluster = mine.cluster_arn().unwrap().to_string();
    let watchdog = cleaning_up(&config, &cluster);
    for delivery in ["first", "again"] {
        let outcome = watchdog.handle(event.clone()).await.unwrap();
        assert_eq!(outcome.action, "cleanedUp", "{delivery}: {outcome:?}");
        let s = statuses(&ecs, &cluster, &[&mine, &other, &foreign]).await;
        assert_eq!(
            s[0],
            stopped("Baton: execution demo-1 ended (FAILED)"),
            "{delivery}"
        );
        assert_eq!(s[1].0, "RUNNING", "{delivery}: another execution's");
        assert_eq!(s[2].0, "RUNNING", "{delivery}: not Baton's data");
    }
}

/// A pipeline's step runs as an execution of its own (the reusable task) with its
/// data in the pipeline's folder, which its input names (`execution`, `step`):
/// when the step's execution ends, its tasks stop, and the pipeline's other steps
/// run on; when the pipeline ends, every task in its folder stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_step_stops_its_own_tasks_and_the_pipeline_end_stops_the_rest() {
    let (moto, config, _s3) = with_data_bucket().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let step = run_task_writing(&moto, &ecs, "s3://baton-data/executions/pipeline-7/task1/").await;
    let sibling =
        run_task_writing(&moto, &ecs, "s3://baton-data/executions/pipeline-7/task2/").await;
    let cluster = step.cluster_arn().unwrap().to_string();
    let watchdog = cleaning_up(&config, &cluster);

    let mut child = sample_event("sfn-execution-failed.json");
    let arn = "arn:aws:states:us-east-1:123456789012:execution:baton-TaskStateMachine-Xy:0b6c1f7e";
    child["detail"]["executionArn"] = arn.into();
    child["detail"]["name"] = "0b6c1f7e".into();
    child["detail"]["status"] = "ABORTED".into();
    child["detail"]["input"] = serde_json::json!({
        "taskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/baton-task1:1",
        "input": {"inline": "x"}, "execution": "pipeline-7", "step": "task1",
    })
    .to_string()
    .into();
    let outcome = watchdog.handle(child).await.unwrap();
    assert_eq!(outcome.action, "cleanedUp", "{outcome:?}");
    let s = statuses(&ecs, &cluster, &[&step, &sibling]).await;
    assert_eq!(
        s[0],
        stopped("Baton: step task1 of execution pipeline-7 ended (ABORTED)")
    );
    assert_eq!(s[1].0, "RUNNING", "the pipeline's other step runs on");

    let mut pipeline = sample_event("sfn-execution-failed.json");
    pipeline["detail"]["name"] = "pipeline-7".into();
    watchdog.handle(pipeline).await.unwrap();
    let s = statuses(&ecs, &cluster, &[&sibling]).await;
    assert_eq!(s[0], stopped("Baton: execution pipeline-7 ended (FAILED)"));
}

/// A stopped fan-out ends many executions at once: the records of one SQS batch
/// share one listing of the cluster (ListTasks and DescribeTasks over every running
/// task), and each still stops its own tasks only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_ended_executions_lists_the_cluster_once() {
    let (moto, config, _s3) = with_data_bucket().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let mut tasks = Vec::new();
    let mut records = Vec::new();
    for i in 0..4 {
        tasks.push(
            run_task_writing(
                &moto,
                &ecs,
                &format!("s3://baton-data/executions/fan-{i}/item-{i}/"),
            )
            .await,
        );
        let mut ended = sample_event("sfn-execution-failed.json");
        ended["detail"]["name"] = format!("fan-{i}").into();
        ended["detail"]["status"] = "ABORTED".into();
        if i < 3 {
            records.push(serde_json::json!({"messageId": format!("m{i}"), "body": ended.to_string(), "eventSource": "aws:sqs"}));
        }
    }
    let cluster = tasks[0].cluster_arn().unwrap().to_string();
    let watchdog = cleaning_up(&config, &cluster);
    let answer = watchdog
        .handle_invocation(serde_json::json!({"Records": records}))
        .await
        .unwrap();
    assert_eq!(
        answer["batchItemFailures"],
        serde_json::json!([]),
        "{answer}"
    );
    assert_eq!(watchdog.listings(), 1, "one listing for the batch of three");
    let s = statuses(&ecs, &cluster, &tasks.iter().collect::<Vec<_>>()).await;
    for (i, status) in s.iter().take(3).enumerate() {
        assert_eq!(
            *status,
            stopped(&format!("Baton: execution fan-{i} ended (ABORTED)"))
        );
    }
    assert_eq!(
        s[3].0, "RUNNING",
        "an execution that did not end keeps its task"
    );
    // One at a time, each event lists the cluster itself.
    let mut ended = sample_event("sfn-execution-failed.json");
    ended["detail"]["name"] = "fan-3".into();
    watchdog.handle(ended).await.unwrap();
    assert_eq!(watchdog.listings(), 2);
}

/// A cleanup ECS refuses is not dropped: the record comes back as a batch item
/// failure, so SQS delivers it again and, after maxReceiveCount, keeps it in the
/// dead-letter queue (alarmed). Refusals that no retry mends (AccessDenied here,
/// with moto's IAM checks on) take the same road: a task left running must be seen.
/// The other records of the batch are unaffected, and a later delivery that is
/// allowed stops the task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_cleanup_comes_back_as_a_batch_item_failure() {
    let (moto, config, _s3) = with_data_bucket().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let task = run_task_writing(&moto, &ecs, "s3://baton-data/executions/demo-1/task1/").await;
    let cluster = task.cluster_arn().unwrap().to_string();
    let ended = sample_event("sfn-execution-failed.json");
    let mut nothing_left = ended.clone();
    nothing_left["detail"]["name"] = "demo-2".into();
    let batch = serde_json::json!({"Records": [
        {"messageId": "demo-1", "body": ended.to_string(), "eventSource": "aws:sqs"},
        {"messageId": "demo-2", "body": nothing_left.to_string(), "eventSource": "aws:sqs"},
    ]});
    for denied in ["ecs:ListTasks", "ecs:DescribeTasks", "ecs:StopTask"] {
        let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": denied, "Resource": "*"},
        ]});
        let user = denied.replace(':', "-");
        let refused = moto.iam_user_config(&user, &policy.to_string()).await;
        let watchdog = cleaning_up(&refused, &cluster);
        moto.enforce_iam(true);
        let answer = watchdog.handle_invocation(batch.clone()).await;
        moto.enforce_iam(false);
        let answer = answer.unwrap();
        let failures = if denied == "ecs:StopTask" {
            // demo-2 has no task to stop: nothing refused.
            serde_json::json!([{"itemIdentifier": "demo-1"}])
        } else {
            serde_json::json!([{"itemIdentifier": "demo-1"}, {"itemIdentifier": "demo-2"}])
        };
        assert_eq!(answer["batchItemFailures"], failures, "{denied}: {answer}");
        let s = statuses(&ecs, &cluster, &[&task]).await;
        assert_eq!(s[0].0, "RUNNING", "{denied}");
    }
    // Delivered again, allowed this time: the task stops.
    let watchdog = cleaning_up(&config, &cluster);
    let answer = watchdog.handle_invocation(batch).await.unwrap();
    assert_eq!(
        answer["batchItemFailures"],
        serde_json::json!([]),
        "{answer}"
    );
    let s = statuses(&ecs, &cluster, &[&task]).await;
    assert_eq!(s[0], stopped("Baton: execution demo-1 ended (FAILED)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_state_stops_its_own_tasks_and_answers_the_typed_error() {
    let (moto, config, _s3) = with_data_bucket().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    // A pipeline step: an execution of the reusable task, its data in the folder of
    // the pipeline's execution demo-7, which the reason names.
    let arn = "arn:aws:states:us-east-1:123456789012:execution:baton-task:0b6c1f7e-2d4a-4c1e-9a57-3f0e8d2b6a11";
    let frozen = run_task_writing(&moto, &ecs, "s3://baton-data/executions/demo-7/task1/").await;
    // The same pipeline's other step, a step whose name begins the same, and
    // another execution's task 1: not this state's.
    let sibling = run_task_writing(&moto, &ecs, "s3://baton-data/executions/demo-7/task2/").await;
    let longer = run_task_writing(&moto, &ecs, "s3://baton-data/executions/demo-7/task10/").await;
    let stranger = run_task_writing(&moto, &ecs, "s3://baton-data/executions/demo-70/task1/").await;
    let cluster = frozen.cluster_arn().unwrap().to_string();
    let watchdog = cleaning_up(&config, &cluster);
    let request = serde_json::json!({"taskTimedOut": {
        "executionArn": arn, "state": "task1",
        "output": "s3://baton-data/executions/demo-7/task1/",
        "heartbeatSeconds": 120, "timeoutSeconds": 86400,
        "timedOut": {"heartbeat": {"Error": "States.Timeout", "Cause": ""}},
    }});
    let answer = watchdog.handle_invocation(request.clone()).await.unwrap();
    assert_eq!(answer["Error"], "Baton.Unresponsive");
    let cause: serde_json::Value = serde_json::from_str(answer["Cause"].as_str().unwrap()).unwrap();
    let id = frozen.task_arn().unwrap().rsplit('/').next().unwrap();
    assert_eq!(
        cause["message"],
        format!("no heartbeat for 120 s; task {id} stopped")
    );
    let s = statuses(&ecs, &cluster, &[&frozen, &sibling, &longer, &stranger]).await;
    assert_eq!(
        s[0],
        stopped("Baton: task1 of execution demo-7 timed out (Baton.Unresponsive)")
    );
    for (other, status) in ["sibling", "longer", "stranger"].iter().zip(&s[1..]) {
        assert_eq!(status.0, "RUNNING", "{other}");
    }
    // Again (a retried invocation): nothing left to stop, the same error.
    let again = watchdog.handle_invocation(request).await.unwrap();
    assert_eq!(again["Error"], "Baton.Unresponsive");
    let cause: serde_json::Value = serde_json::from_str(again["Cause"].as_str().unwrap()).unwrap();
    assert_eq!(cause["tasksStopped"], serde_json::json!([]));
}
