"""Fixes for the gaps of moto that stop Baton's pipeline from running locally.

Each fix is one function named for the moto behaviour it corrects, applied in the
process that hosts moto (moto_host.py), and covered by tests/compat/, which
also checks that the gap is still there in the pinned moto: when an upgrade closes
it, that test fails and says which fix to delete.

One module per service: stepfunctions (the API, task tokens), asl (the interpreter
moto embeds), distributed_map (the interpreter's Distributed Map), ecs, s3, sqs,
events (EventBridge), cloudformation and lambda_. Every fix is importable from here
too (`compat.fix_…`), as the tests and the messages of their gap checks name them.
"""

from ._shared import LOG
from .cloudformation import (
    fix_cloudformation_change_sets_leave_no_outputs,
    fix_cloudformation_ignores_sam_transform,
    fix_cloudformation_roles_skip_managed_policy_arns,
    fix_cloudformation_skips_bucket_and_queue_policies,
    fix_cloudformation_state_machines_ignore_substitutions,
    fix_cloudformation_task_definitions_drop_their_roles,
)
from .asl import (
    fix_asl_aws_sdk_parameter_normalisation,
    fix_asl_ecs_drops_run_task_parameters,
    fix_asl_ecs_parameter_normalisation,
    fix_asl_integrations_call_with_fixed_keys,
    fix_asl_states_parameter_normalisation,
    fix_sfn_definitions_accept_undocumented_integration_parameters,
    fix_sfn_indexed_reference_paths_answer_a_list,
    fix_sfn_inline_map_runs_every_iteration_at_once,
    fix_sfn_map_and_parallel_turn_states_errors_into_runtime,
    fix_sfn_nested_workflow_answers_hold_datetimes,
    fix_sfn_states_all_catches_terminal_errors,
    fix_sfn_task_input_skips_the_payload_quota,
)
from .distributed_map import (
    fix_sfn_definitions_accept_duplicate_map_labels,
    fix_sfn_distributed_map_ignores_failed_items,
    fix_sfn_distributed_map_refuses_item_batcher,
    fix_sfn_distributed_map_items_share_the_parents_execution,
    fix_sfn_distributed_map_recurses_once_per_item,
    fix_sfn_integer_tolerated_failure_percentage_is_refused,
    fix_sfn_item_reader_lists_only_the_first_page,
    fix_sfn_map_run_children_are_invisible_to_the_api,
    fix_sfn_result_writer_writes_an_empty_manifest,
    fix_sfn_stopped_parents_leave_map_runs_running,
)
from .ecs import (
    fix_ecs_list_tasks_combines_started_by_with_other_filters,
    fix_ecs_run_task_needs_container_memory,
    fix_ecs_run_task_never_reports_failures,
    fix_ecs_run_task_skips_the_task_roles_trust,
    fix_ecs_stop_task_reports_stopped_at_once,
    fix_ecs_submit_task_state_change_missing,
    fix_ecs_sync_succeeds_whatever_the_exit_code,
    fix_ecs_task_reads_race_run_task,
)
from .events import fix_eventbridge_lambda_and_states_targets, fix_eventbridge_sqs_targets_skip_the_queue_policy
from .lambda_ import fix_lambda_invoke_needs_docker
from .s3 import (
    fix_s3_missing_keys_are_404_to_everyone,
    fix_s3_multipart_uploads_all_begun_in_2010,
    fix_s3_ranged_gets_read_the_whole_object,
)
from .sqs import fix_sqs_event_source_mappings_ignore_batch_failures
from .stepfunctions import (  # noqa: F401  (callback_endpoint, LOCAL_TASK_TOKEN_CHARS: for importers)
    LOCAL_TASK_TOKEN_CHARS,
    callback_endpoint,
    fix_closed_tokens_answer_invalid_token,
    fix_retried_callback_states_reuse_their_token,
    fix_send_task_failure_drops_cause,
    fix_sfn_emits_no_execution_status_change_events,
    fix_sfn_execution_history_is_never_paged,
    fix_sfn_has_no_redrive_execution,
    fix_sfn_heartbeat_timeouts_never_match_states_heartbeat_timeout,
    fix_sfn_parser_errors_have_no_code,
    fix_sfn_requests_skip_length_constraints,
    fix_sfn_start_execution_without_a_name,
    fix_sfn_stop_execution_waits_for_the_callback,
    fix_sfn_stopped_parents_leave_sync_children_running,
    fix_task_tokens_are_short_uuids,
    limit_sync_polling,
)


def apply_all(lambda_endpoint=None, lambda_binaries=None):
    # The order is significant: some fixes wrap a moto method another fix has already
    # replaced (Execution.stop, BaseExecutionWorkerCommunication.terminated), so
    # fix_sfn_stop_execution_waits_for_the_callback must come after
    # fix_sfn_emits_no_execution_status_change_events and before
    # fix_sfn_stopped_parents_leave_sync_children_running; and
    # fix_sfn_requests_skip_length_constraints wraps the Step Functions response methods,
    # so it comes after fix_send_task_failure_drops_cause, fix_sfn_has_no_redrive_execution
    # and fix_sfn_execution_history_is_never_paged, which add or replace some; and
    # fix_eventbridge_sqs_targets_skip_the_queue_policy wraps the Rule.send_to_targets
    # that fix_eventbridge_lambda_and_states_targets replaces, so it comes after it.
    # fix_asl_integrations_call_with_fixed_keys replaces the interpreter's client
    # factory, which fix_ecs_run_task_never_reports_failures takes from its module when
    # it is applied, so it comes before that one.
    # fix_sfn_nested_workflow_answers_hold_datetimes wraps the response normalisation
    # fix_asl_states_parameter_normalisation gives the Step Functions integration, so it
    # comes after it.
    # The Distributed Map's fixes (compat.distributed_map) build on one another in the
    # order listed: the worker loop's _map_run, which the child executions wrap, whose
    # outcomes the tolerated failure threshold reads; the Map Run's _eval_body, which the
    # ResultWriter fix wraps; fix_sfn_distributed_map_refuses_item_batcher wraps the
    # child executions' _map_run (it batches the items before they start), so it comes
    # after fix_sfn_distributed_map_items_share_the_parents_execution.
    # fix_sfn_map_run_children_are_invisible_to_the_api replaces
    # Step Functions response methods, so it comes before
    # fix_sfn_requests_skip_length_constraints.
    # Keep the order when moving fixes.
    fixes = [
        fix_send_task_failure_drops_cause,
        fix_sfn_has_no_redrive_execution,
        fix_sfn_execution_history_is_never_paged,
        fix_sfn_map_run_children_are_invisible_to_the_api,
        fix_sfn_requests_skip_length_constraints,
        fix_sfn_parser_errors_have_no_code,
        fix_task_tokens_are_short_uuids,
        fix_closed_tokens_answer_invalid_token,
        fix_retried_callback_states_reuse_their_token,
        fix_asl_ecs_parameter_normalisation,
        fix_asl_states_parameter_normalisation,
        fix_sfn_nested_workflow_answers_hold_datetimes,
        fix_sfn_indexed_reference_paths_answer_a_list,
        fix_asl_aws_sdk_parameter_normalisation,
        fix_sfn_start_execution_without_a_name,
        fix_asl_ecs_drops_run_task_parameters,
        fix_sfn_definitions_accept_undocumented_integration_parameters,
        fix_sfn_definitions_accept_duplicate_map_labels,
        fix_sfn_map_and_parallel_turn_states_errors_into_runtime,
        fix_sfn_inline_map_runs_every_iteration_at_once,
        fix_sfn_integer_tolerated_failure_percentage_is_refused,
        fix_sfn_distributed_map_recurses_once_per_item,
        fix_sfn_distributed_map_items_share_the_parents_execution,
        fix_sfn_distributed_map_ignores_failed_items,
        fix_sfn_stopped_parents_leave_map_runs_running,
        fix_sfn_result_writer_writes_an_empty_manifest,
        fix_sfn_distributed_map_refuses_item_batcher,
        fix_sfn_item_reader_lists_only_the_first_page,
        fix_sfn_task_input_skips_the_payload_quota,
        fix_sfn_states_all_catches_terminal_errors,
        fix_asl_integrations_call_with_fixed_keys,
        fix_ecs_submit_task_state_change_missing,
        fix_ecs_stop_task_reports_stopped_at_once,
        fix_ecs_run_task_needs_container_memory,
        fix_ecs_run_task_never_reports_failures,
        fix_ecs_run_task_skips_the_task_roles_trust,
        fix_s3_missing_keys_are_404_to_everyone,
        fix_s3_multipart_uploads_all_begun_in_2010,
        fix_s3_ranged_gets_read_the_whole_object,
        fix_ecs_task_reads_race_run_task,
        fix_ecs_list_tasks_combines_started_by_with_other_filters,
        fix_sfn_emits_no_execution_status_change_events,
        fix_sfn_stop_execution_waits_for_the_callback,
        fix_sfn_stopped_parents_leave_sync_children_running,
        fix_sfn_heartbeat_timeouts_never_match_states_heartbeat_timeout,
        fix_ecs_sync_succeeds_whatever_the_exit_code,
        fix_eventbridge_lambda_and_states_targets,
        fix_eventbridge_sqs_targets_skip_the_queue_policy,
        fix_cloudformation_ignores_sam_transform,
        fix_cloudformation_state_machines_ignore_substitutions,
        fix_cloudformation_skips_bucket_and_queue_policies,
        fix_cloudformation_roles_skip_managed_policy_arns,
        fix_cloudformation_task_definitions_drop_their_roles,
        fix_cloudformation_change_sets_leave_no_outputs,
    ]
    for fix in fixes:
        fix()
        LOG.info("applied %s", fix.__name__)
    # Not a gap of moto's against AWS: what lets one process carry 1,000 waiting states.
    limit_sync_polling()
    LOG.info("applied limit_sync_polling")
    if lambda_endpoint:
        fix_lambda_invoke_needs_docker(lambda_endpoint, lambda_binaries or {})
        LOG.info("applied fix_lambda_invoke_needs_docker → %s", lambda_endpoint)
    fix_sqs_event_source_mappings_ignore_batch_failures()
    LOG.info("applied fix_sqs_event_source_mappings_ignore_batch_failures")
