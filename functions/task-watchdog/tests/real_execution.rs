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
    started_by: &str,
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
        .started_by(started_by)
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

/// A task started by `started_by` (an execution's MD5) that writes to `output`.
async fn run_task_writing(
    moto: &Moto,
    ecs: &aws_sdk_ecs::Client,
    started_by: &str,
    output: &str,
) -> aws_sdk_ecs::types::Task {
    run_task(moto, ecs, started_by, &[("BATON_OUTPUT", output)]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_without_overrides_are_completed_from_describe_tasks() {
    // moto's ECS keeps RunTask's overrides; an event that lost them is looked up.
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let machine = TokenMachine::create(&moto, &config, "describe", None).await;
    let (execution, token) = machine.start("describe").await;

    let ecs = aws_sdk_ecs::Client::new(&config);
    let task = run_task(&moto, &ecs, "watchdog-test", &[("TASK_TOKEN", &token)]).await;

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

/// An execution that ended leaves no task running: the tasks it started (StartedBy)
/// whose output is Baton's are stopped, with a reason naming it, wherever their
/// folder; other executions' and non-Baton tasks are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_execution_leaves_no_task_running_and_others_keep_theirs() {
    let (moto, config, _s3) = with_data_bucket().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let event = sample_event("sfn-execution-failed.json");
    let arn = event["detail"]["executionArn"].as_str().unwrap();
    // Tasks carry startedBy = States.Hash($$.Execution.Id, 'MD5') (the state machines).
    // Its own; another execution's; a pipeline step's (started by this child
    // execution, its data in the pipeline execution's folder); and one that is not
    // Baton's data, left alone even with the same StartedBy.
    let mut tasks = Vec::new();
    for (by, output) in [
        (arn.to_string(), "s3://baton-data/executions/demo-1/task2/"),
        (
            format!("{arn}0"),
            "s3://baton-data/executions/demo-10/task1/",
        ),
        (
            arn.to_string(),
            "s3://baton-data/executions/pipeline-7/task1/",
        ),
        (arn.to_string(), "s3://someone-else/out/"),
    ] {
        let started_by = baton::execution_event::started_by(&by);
        tasks.push(run_task_writing(&moto, &ecs, &started_by, output).await);
    }
    let [mine, other, step, foreign] = tasks.try_into().unwrap();
    let cluster = mine.cluster_arn().unwrap().to_string();
    let watchdog = Watchdog::new(&config, None)
        .with_handoff(baton::handoff::HandoffConfig::for_bucket("baton-data"))
        .with_cluster(&cluster);
    for delivery in ["first", "again"] {
        let outcome = watchdog.handle(event.clone()).await.unwrap();
        assert_eq!(outcome.action, "cleanedUp", "{delivery}: {outcome:?}");
        let described = ecs
            .describe_tasks()
            .cluster(&cluster)
            .tasks(mine.task_arn().unwrap())
            .tasks(other.task_arn().unwrap())
            .tasks(step.task_arn().unwrap())
            .tasks(foreign.task_arn().unwrap())
            .send()
            .await
            .unwrap();
        let desired = |arn: Option<&str>| {
            let task = described
                .tasks()
                .iter()
                .find(|t| t.task_arn() == arn)
                .unwrap();
            (
                task.desired_status().unwrap().to_string(),
                task.stopped_reason().map(String::from),
            )
        };
        let stopped = |reason: &str| ("STOPPED".to_string(), Some(reason.to_string()));
        let mine_stopped = stopped("Baton: execution demo-1 ended (FAILED)");
        assert_eq!(desired(mine.task_arn()), mine_stopped, "{delivery}");
        assert_eq!(desired(other.task_arn()).0, "RUNNING", "{delivery}");
        let step_stopped = stopped("Baton: step task1 of execution pipeline-7 ended (FAILED)");
        assert_eq!(desired(step.task_arn()), step_stopped, "{delivery}");
        assert_eq!(desired(foreign.task_arn()).0, "RUNNING", "{delivery}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_state_stops_its_own_tasks_and_answers_the_typed_error() {
    let (moto, config, _s3) = with_data_bucket().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    // A pipeline step: an execution of the reusable task, its data in the folder of
    // the pipeline's execution demo-7, which the reason names.
    let arn = "arn:aws:states:us-east-1:123456789012:execution:baton-task:0b6c1f7e-2d4a-4c1e-9a57-3f0e8d2b6a11";
    let ours = baton::execution_event::started_by(arn);
    let frozen = run_task_writing(
        &moto,
        &ecs,
        &ours,
        "s3://baton-data/executions/demo-7/task1/",
    )
    .await;
    // The same execution's other state, and another execution's task 1: not this state's.
    let sibling = run_task_writing(
        &moto,
        &ecs,
        &ours,
        "s3://baton-data/executions/demo-7/task2/",
    )
    .await;
    let stranger = run_task_writing(
        &moto,
        &ecs,
        &baton::execution_event::started_by("another"),
        "s3://baton-data/executions/demo-7/task1/",
    )
    .await;
    let cluster = frozen.cluster_arn().unwrap().to_string();
    let watchdog = Watchdog::new(&config, None)
        .with_handoff(baton::handoff::HandoffConfig::for_bucket("baton-data"))
        .with_cluster(&cluster);
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
    let described = ecs
        .describe_tasks()
        .cluster(&cluster)
        .tasks(frozen.task_arn().unwrap())
        .tasks(sibling.task_arn().unwrap())
        .tasks(stranger.task_arn().unwrap())
        .send()
        .await
        .unwrap();
    let status = |task: &aws_sdk_ecs::types::Task| {
        let t = described
            .tasks()
            .iter()
            .find(|t| t.task_arn() == task.task_arn())
            .unwrap();
        (
            t.desired_status().unwrap().to_string(),
            t.stopped_reason().map(String::from),
        )
    };
    assert_eq!(
        status(&frozen),
        (
            "STOPPED".into(),
            Some("Baton: task1 of execution demo-7 timed out (Baton.Unresponsive)".into())
        )
    );
    assert_eq!(status(&sibling).0, "RUNNING");
    assert_eq!(status(&stranger).0, "RUNNING");
    // Again (a retried invocation): nothing left to stop, the same error.
    let again = watchdog.handle_invocation(request).await.unwrap();
    assert_eq!(again["Error"], "Baton.Unresponsive");
    let cause: serde_json::Value = serde_json::from_str(again["Cause"].as_str().unwrap()).unwrap();
    assert_eq!(cause["tasksStopped"], serde_json::json!([]));
}
