"""A Distributed Map as Step Functions runs it. moto's interpreter (taken from LocalStack)
parses `ProcessorConfig.Mode: DISTRIBUTED`, `ItemReader`, `ResultWriter` and the
tolerated-failure fields, but runs the items as frames of the parent execution,
ignores failed items, never aborts a Map Run, writes an empty result manifest and
recurses once per item; and its grammar refuses `ItemBatcher`. The fixes here, in the
order apply_all applies them:

- fix_sfn_integer_tolerated_failure_percentage_is_refused: `ToleratedFailurePercentage: 5`
  is refused at creation (only `5.0` parses).
- fix_sfn_distributed_map_recurses_once_per_item: workers loop instead of recursing,
  at most 10,000 of them.
- fix_sfn_distributed_map_items_share_the_parents_execution: each item is a child
  execution with its own ARN, name, context object and history.
- fix_sfn_map_run_children_are_invisible_to_the_api: DescribeExecution,
  GetExecutionHistory, StopExecution and ListExecutions(mapRunArn) see the children.
- fix_sfn_distributed_map_ignores_failed_items: the tolerated failure threshold.
- fix_sfn_stopped_parents_leave_map_runs_running: StopExecution aborts the Map Run.
- fix_sfn_result_writer_writes_an_empty_manifest: the result files AWS writes.
- fix_sfn_distributed_map_refuses_item_batcher: `ItemBatcher` (refused at creation)
  groups the items into batches, a child execution each.
- fix_sfn_item_reader_lists_only_the_first_page: an `s3:listObjectsV2` ItemReader
  reads every page of the listing, not the first 1,000 keys.
- fix_sfn_definitions_accept_duplicate_map_labels: two Map states of one definition
  never share a `Label` (refused at creation).

The facts they follow, with their sources, are in the docstrings (and gathered in
docs/aws-conformance.md, rows 70 on)."""

import base64
import copy
import datetime
import json
import threading
import uuid

from ._shared import LOG, dumps, refuse_definitions

# Step Functions guide, "Using Map state in Distributed mode for large-scale parallel
# workloads" (https://docs.aws.amazon.com/step-functions/latest/dg/state-map-distributed.html):
# "If you don't specify [MaxConcurrency], Step Functions runs 10,000 parallel child
# workflow executions in parallel", which is also the most it runs at once.
DISTRIBUTED_MAP_MAX_CONCURRENCY = 10_000

# Step Functions guide, "Tolerated failure threshold for Distributed Map state"
# (https://docs.aws.amazon.com/step-functions/latest/dg/maprun-fail-threshold.html): the
# error; the cause is the one AWS reports (LocalStack's TestState mock of the Map state,
# recorded against AWS, gives the same text).
EXCEEDED_ERROR = "States.ExceedToleratedFailureThreshold"
EXCEEDED_CAUSE = "The specified tolerated failure threshold was exceeded"

# A result file holds at most what one S3 PutObject can (5 GB, S3 user guide, "Uploading
# objects"); Step Functions starts SUCCEEDED_1.json, ... past it (guide, "ResultWriter
# (Map)", https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html).
RESULT_FILE_MAX_BYTES = 5 * 1024 ** 3
RESULT_STATUSES = ("FAILED", "PENDING", "SUCCEEDED")

# A batch is at most 256 KiB, the most any state's input can be (Step Functions quotas):
# AWS CDK's ItemBatcherProps, without a byte limit: "no limits on the batch size under the
# 256KB limit"; the guide's "ItemBatcher (Map)" (https://docs.aws.amazon.com/step-functions/
# latest/dg/input-output-itembatcher.html) says "up to 256 KiB" (recalled: the search
# tools return only that page's opening).
MAX_INPUT_BYTES_PER_BATCH = 256 * 1024
ITEM_BATCHER_FIELDS = ("MaxItemsPerBatch", "MaxItemsPerBatchPath", "MaxInputBytesPerBatch",
                       "MaxInputBytesPerBatchPath", "BatchInput")
# What a Map state with an ItemBatcher carries it in through moto's grammar (which has no
# ItemBatcher): its Comment, as `<marker><base64 of {"ItemBatcher", "Comment"}>`.
ITEM_BATCHER_MARKER = "baton-item-batcher:"


# ---------------------------------------------------------------------------------------
# Pure helpers (tested on their own).


def worker_count(max_concurrency, items):
    """How many child executions of a Map Run run at once: its MaxConcurrency (0: no
    limit of its own), never more than DISTRIBUTED_MAP_MAX_CONCURRENCY nor than there
    are items."""
    limit = max_concurrency if max_concurrency and max_concurrency > 0 else DISTRIBUTED_MAP_MAX_CONCURRENCY
    return max(0, min(limit, DISTRIBUTED_MAP_MAX_CONCURRENCY, items))


def threshold_exceeded(failed, total, count=None, percentage=None):
    """Has a Map Run with `failed` failed (or timed-out) items out of `total` exceeded
    its tolerated failure threshold? `count` / `percentage`: ToleratedFailureCount and
    ToleratedFailurePercentage, None when the state gives neither (then no failure is
    tolerated). Exceeding means strictly above; with both, exceeding either is enough
    (guide, "Tolerated failure threshold for Distributed Map state")."""
    if count is None and percentage is None:
        return failed > 0
    if count is not None and failed > count:
        return True
    return percentage is not None and total > 0 and failed * 100.0 / total > percentage


def json_text(value):
    """A JSON value as Step Functions' texts hold it: compact; dates (which boto3 gives an
    integration's answer) in ISO 8601, as moto's interpreter writes them."""
    def default(o):
        return o.isoformat() if isinstance(o, (datetime.date, datetime.datetime)) else str(o)

    return json.dumps(value, separators=(",", ":"), default=default)


def iso_millis(at):
    """A date as the result files write it: ISO 8601, UTC, milliseconds, `Z`."""
    return at.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" if at else None


def json_bytes(value):
    """The size in bytes of `value` as compact JSON text in UTF-8."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def batch_of(items, batch_input=None):
    """A child execution's input for a batch of (selected) items: {"Items": [...]}, and
    "BatchInput" when the ItemBatcher gives one (None: it gives none)."""
    return {"Items": list(items)} if batch_input is None else {"Items": list(items), "BatchInput": batch_input}


def item_batches(items, max_items=None, max_bytes=None, batch_input=None):
    """The inputs of the child executions of a batched Map Run, in item order: each
    {"Items": [...], "BatchInput"?} with as many of the next items as it can take, at
    most `max_items` of them (None: no limit of its own) and at most `max_bytes` bytes of
    JSON text, BatchInput included, never more than MAX_INPUT_BYTES_PER_BATCH. An item too
    large for any batch gets one of its own."""
    limit = min(max_bytes or MAX_INPUT_BYTES_PER_BATCH, MAX_INPUT_BYTES_PER_BATCH)
    base = json_bytes(batch_of([], batch_input))  # '{"Items":[]' ... '}'
    batches, current, size = [], [], base
    for item in items:
        grown = size + json_bytes(item) + (1 if current else 0)  # and its comma
        if current and ((max_items and len(current) >= max_items) or grown > limit):
            batches.append(current)
            current, grown = [], base + json_bytes(item)
        current.append(item)
        size = grown
    if current:
        batches.append(current)
    return [batch_of(batch, batch_input) for batch in batches]


def map_labels(states, at="/States"):
    """(where, label) of every Map state with a Label among `states`, and in the states
    nested in their Map and Parallel states, in definition order."""
    for name, state in states.items() if isinstance(states, dict) else ():
        if not isinstance(state, dict):
            continue
        where = f"{at}/{name}"
        if state.get("Type") == "Map" and "Label" in state:
            yield where, state["Label"]
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(key), dict):
                yield from map_labels(state[key].get("States"), f"{where}/{key}/States")
        for index, branch in enumerate(state.get("Branches") or []):
            if isinstance(branch, dict):
                yield from map_labels(branch.get("States"), f"{where}/Branches/{index}/States")


def map_label_problems(definition):
    """Why Step Functions refuses the Map states' Labels of this parsed definition for
    sharing one ("Labels ... must be unique within a state machine definition", Step
    Functions guide, "Using Map state in Distributed mode", Label; its diagnostic code,
    API reference, ValidateStateMachineDefinitionDiagnostic: "DUPLICATE_LABEL_NAME - A
    label name appears more than once"), [] when none do.
    Their length and characters moto's parser checks already."""
    problems, seen = [], {}
    for where, label in map_labels(definition.get("States") if isinstance(definition, dict) else None):
        if label in seen:
            problems.append(f"DUPLICATE_LABEL_NAME: Label '{label}' is not unique within the state machine "
                            f"definition (also at {seen[label]}) at {where}/Label")
        seen.setdefault(label, where)
    return problems


def item_batcher_problems(batcher, at):
    """Why Step Functions refuses this ItemBatcher (of the Map state at `at`, e.g.
    `/States/M`), [] when it takes it: an object with at least one of MaxItemsPerBatch,
    MaxInputBytesPerBatch or their ...Path forms, never a field and its ...Path together,
    the counts positive integers, the paths reference paths (`$...`), no other field
    (Amazon States Language, "Batching Items", https://states-language.net/spec.html).
    BatchInput may be any JSON (AWS's own ASL language service, amazon-states-language-
    service, takes any type there); an object is a payload template."""
    where = f"at {at}/ItemBatcher"
    if not isinstance(batcher, dict):
        return [f"SCHEMA_VALIDATION_FAILED: ItemBatcher must be an object {where}"]
    problems = [f"SCHEMA_VALIDATION_FAILED: The field '{key}' is not supported by Step Functions {where}"
                for key in batcher if key not in ITEM_BATCHER_FIELDS]
    if not any(key in batcher for key in ITEM_BATCHER_FIELDS[:4]):
        problems.append("SCHEMA_VALIDATION_FAILED: ItemBatcher must have at least one of MaxItemsPerBatch, "
                        f"MaxItemsPerBatchPath, MaxInputBytesPerBatch or MaxInputBytesPerBatchPath {where}")
    for field in ("MaxItemsPerBatch", "MaxInputBytesPerBatch"):
        if field in batcher and field + "Path" in batcher:
            problems.append(f"SCHEMA_VALIDATION_FAILED: {field} and {field}Path are mutually exclusive {where}")
        value = batcher.get(field)
        if field in batcher and (type(value) is not int or value <= 0):
            problems.append(f"SCHEMA_VALIDATION_FAILED: {field} must be a positive integer {where}/{field}")
        path = batcher.get(field + "Path")
        if field + "Path" in batcher and not (isinstance(path, str) and path.startswith("$")):
            problems.append(f"SCHEMA_VALIDATION_FAILED: {field}Path must be a reference path {where}/{field}Path")
    return problems


def split_result_file(entries, max_bytes=RESULT_FILE_MAX_BYTES):
    """The bodies of the files (each a JSON array) that hold `entries` in order, each at
    most `max_bytes` long unless a single entry is longer."""
    bodies, current, size = [], [], 2  # "[" and "]"
    for entry in entries:
        text = dumps(entry)
        grown = size + len(text.encode("utf-8")) + (1 if current else 0)
        if current and grown > max_bytes:
            bodies.append(("[" + ",".join(current) + "]").encode("utf-8"))
            current, grown = [], 2 + len(text.encode("utf-8"))
        current.append(text)
        size = grown
    if current:
        bodies.append(("[" + ",".join(current) + "]").encode("utf-8"))
    return bodies


def result_files(run_id, prefix, by_status, max_bytes=RESULT_FILE_MAX_BYTES):
    """{key: body} of a Map Run's result files, and the manifest's `ResultFiles`: under
    `<prefix>/<map run id>/`, `<STATUS>_<n>.json` for each status that has entries."""
    folder = f"{prefix}{run_id}/"
    files, listed = {}, {status: [] for status in RESULT_STATUSES}
    for status in RESULT_STATUSES:
        for n, body in enumerate(split_result_file(by_status.get(status, []), max_bytes)):
            key = f"{folder}{status}_{n}.json"
            files[key] = body
            listed[status].append({"Key": key, "Size": len(body)})
    return files, listed


# ---------------------------------------------------------------------------------------
# Child executions and Map Runs.

_children = {}  # child execution ARN -> MapRunChild
_map_runs = {}  # Map Run ARN -> MapRunChildren
_registry_lock = threading.Lock()


def child_execution(arn):
    """The child execution of a Map Run with this ARN, or None."""
    return _children.get(arn)


def map_run_children(map_run_arn):
    """The MapRunChildren of this Map Run, or None."""
    return _map_runs.get(map_run_arn)


class MapRunChild:
    """One item of a Distributed Map: a child workflow execution. It has what moto's
    Step Functions responses read of an Execution, and what the fixes that wrap
    `Execution.stop` read (`exec_worker` None, `exec_arn`, account and region), so that
    stopping it (`Execution.stop(child, ...)`) stops its `.sync` children too."""

    exec_worker = None  # not run by an ExecutionWorker: its Map Run runs it
    redrive_count = 0

    def __init__(self, map_run, index, name):
        record = map_run.record
        self.map_run_arn = record.map_run_arn
        self.index = index
        self.name = name
        # arn:...:stateMachine:<name>/<label>  ->  arn:...:execution:<name>/<label>:<child name>
        self.state_machine_arn = record.map_state_machine_arn
        self.exec_arn = self.execution_arn = (
            record.map_state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + name)
        _, _, _, self.region_name, self.account_id, _ = self.exec_arn.split(":", 5)
        self.start_date = datetime.datetime.now(tz=datetime.timezone.utc)
        self.stop_date = None
        self.exec_status = "RUNNING"
        self.input_value = None
        self.output = None  # JSON text, as DescribeExecution gives it
        self.error = None
        self.cause = None
        self.events = None  # its EventManager, from when it starts
        self.frame = None  # the Environment it runs in, while it runs
        self.aborted = False  # asked to stop (StopExecution, its Map Run failing)
        self.output_details = {"included": True}
        self.item_count = map_run.weight(index)  # the items it processes (a batch's)

    @property
    def status(self):
        return self.exec_status

    @property
    def execution_input(self):
        return json_text(self.input_value)

    def to_history_output(self):
        return {"events": self.events.get_event_history() if self.events else []}

    def context(self, role_arn):
        """Its `$$.Execution`: the child's own ARN, name, input and start time."""
        return {"Id": self.exec_arn, "Input": self.input_value, "Name": self.name, "RoleArn": role_arn,
                "StartTime": self.start_date.isoformat(), "RedriveCount": 0}

    def abort(self, error=None, cause=None):
        """Stop it while it runs (StopExecution, its Map Run failing or aborted): its
        frame stops, and a callback it waits for is answered."""
        self.aborted = True
        frame = self.frame
        if frame is None:
            return
        frame.set_stop(stop_date=datetime.datetime.now(tz=datetime.timezone.utc), cause=cause, error=error)
        _wake_callback(frame)

    def result_entry(self):
        """Its entry in a result file (guide, "ResultWriter (Map)", Transformation NONE:
        the child's output unchanged with the workflow metadata)."""
        entry = {"ExecutionArn": self.exec_arn, "Input": self.execution_input, "InputDetails": {"Included": True},
                 "Name": self.name}
        if self.exec_status == "SUCCEEDED":
            entry.update({"Output": self.output, "OutputDetails": {"Included": True}})
        else:
            entry.update({k: v for k, v in (("Error", self.error), ("Cause", self.cause)) if v is not None})
        redrivable = self.exec_status in ("FAILED", "TIMED_OUT", "ABORTED")
        entry.update({"RedriveCount": 0, "RedriveStatus": "REDRIVABLE" if redrivable else "NOT_REDRIVABLE"})
        if not redrivable:
            entry["RedriveStatusReason"] = f"Execution is {self.exec_status} and cannot be redriven"
        entry.update({"StartDate": iso_millis(self.start_date), "StateMachineArn": self.state_machine_arn,
                      "Status": self.exec_status, "StopDate": iso_millis(self.stop_date)})
        return entry

    def list_item(self):
        """Its ListExecutions(mapRunArn=...) item (API reference, ExecutionListItem)."""
        item = {"executionArn": self.exec_arn, "stateMachineArn": self.state_machine_arn, "name": self.name,
                "status": self.exec_status, "startDate": self.start_date, "mapRunArn": self.map_run_arn,
                "itemCount": self.item_count}
        if self.stop_date:
            item["stopDate"] = self.stop_date
        return item


def _wake_callback(frame):
    """Answer the callback a stopped child's `.waitForTaskToken` state waits for (its
    token is in its context object), as StopExecution does for an execution's."""
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackOutcomeFailure

    token = (frame.states.context_object.context_object_data.get("Task") or {}).get("Token")
    endpoint = frame.callback_pool_manager.get(token) if token else None
    if endpoint is not None and endpoint.get_outcome() is None:
        endpoint.notify(CallbackOutcomeFailure(callback_id=token, error="States.Aborted",
                                               cause="the child execution was stopped"))


class MapRunChildren:
    """The items of one Map Run and the child executions started for them, with the
    Map Run's counts (moto's MapRunRecord counters, kept as DescribeMapRun defines them:
    API reference, MapRunItemCounts and MapRunExecutionCounts). `items`: the children's
    inputs, one each; `weights`: how many of the Map's items each of them holds (a
    batch's, fix_sfn_distributed_map_refuses_item_batcher), 1 each when None. The item
    counts count items, the execution counts children."""

    def __init__(self, record, items, weights=None):
        self.record = record
        self.items = items
        self.weights = list(weights) if weights is not None else None
        self.by_index = {}
        self.lock = threading.Lock()
        self.exceeded = False  # its tolerated failure threshold was exceeded
        # (index, item) -> the input a child for the item gets (its ItemSelector's)
        self.child_input = lambda index, item: item
        for counter, total in ((record.item_counter, sum(self.weights) if self.weights else len(items)),
                               (record.execution_counter, len(items))):
            counter.total.count(total)
            counter.pending.count(total)

    def weight(self, index):
        """How many of the Map's items the child for `index` processes."""
        return self.weights[index] if self.weights else 1

    def _counted(self, weight):
        return ((self.record.item_counter, weight), (self.record.execution_counter, 1))

    def start(self, index):
        child = MapRunChild(self, index, str(uuid.uuid4()))
        with self.lock:
            self.by_index[index] = child
        _children[child.exec_arn] = child
        for counter, n in self._counted(child.item_count):
            counter.pending.offset(-n)
            counter.running.count(n)
        return child

    def ended(self, child):
        """Count a child that has ended, by its status."""
        field = {"SUCCEEDED": "succeeded", "FAILED": "failed", "TIMED_OUT": "timed_out",
                 "ABORTED": "aborted"}[child.exec_status]
        for counter, n in self._counted(child.item_count):
            counter.running.offset(-n)
            getattr(counter, field).count(n)
            if field == "succeeded":  # its output is the Map's (a ResultWriter recounts)
                counter.results_written.count(n)

    def running(self):
        with self.lock:
            return [child for child in self.by_index.values() if child.exec_status == "RUNNING"]

    def started(self):
        """Every child started, in item order."""
        with self.lock:
            return [child for _, child in sorted(self.by_index.items())]

    def children(self):
        """Every child started, newest first (ListExecutions' order)."""
        with self.lock:
            started = list(self.by_index.values())
        return sorted(started, key=lambda child: child.start_date, reverse=True)

    def result_entries(self):
        """{status: entries} for the result files, in item order: SUCCEEDED, FAILED (failed,
        timed-out and aborted children) and PENDING (items no child was started for)."""
        with self.lock:
            started = dict(self.by_index)
        by_status = {status: [] for status in RESULT_STATUSES}
        for index, item in enumerate(self.items):
            child = started.get(index)
            if child is None:
                by_status["PENDING"].append({"Input": json_text(self.child_input(index, item)),
                                             "InputDetails": {"Included": True},
                                             "Status": "PENDING"})
            else:
                by_status["SUCCEEDED" if child.exec_status == "SUCCEEDED" else "FAILED"].append(child.result_entry())
        return by_status


def _register_map_run(record, items, weights=None):
    """The MapRunChildren of this Map Run: registered now, or earlier (a batched Map Run's
    are registered with their weights before the children's map_run asks)."""
    with _registry_lock:
        run = _map_runs.get(record.map_run_arn)
        if run is None:
            run = _map_runs[record.map_run_arn] = MapRunChildren(record, items, weights)
    return run


# ---------------------------------------------------------------------------------------
# The fixes.


def fix_sfn_integer_tolerated_failure_percentage_is_refused():
    """`ToleratedFailurePercentage` is "a value between zero and 100" (Step Functions
    guide, "Tolerated failure threshold for Distributed Map state",
    https://docs.aws.amazon.com/step-functions/latest/dg/maprun-fail-threshold.html), an
    integer included (the guide's examples; AWS CDK emits a number). moto's grammar reads
    only a decimal there (`30.0`): CreateStateMachine refuses `30` with InvalidDefinition.
    Read an integer percentage as the same decimal before the definition is parsed."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    original = AmazonStateLanguageParser.parse

    def as_decimal(node, converted):
        """`node` with the integer ToleratedFailurePercentage of its Map states as decimals
        (appended to `converted`); nothing else changes (Parameters may hold any key)."""
        if isinstance(node, list):
            return [as_decimal(value, converted) for value in node]
        if not isinstance(node, dict):
            return node
        node = {key: as_decimal(value, converted) for key, value in node.items()}
        if node.get("Type") == "Map" and type(node.get("ToleratedFailurePercentage")) is int:
            converted.append(node["ToleratedFailurePercentage"])
            node["ToleratedFailurePercentage"] = float(node["ToleratedFailurePercentage"])
        return node

    def parse(definition):
        try:
            parsed = json.loads(definition)
        except (TypeError, ValueError):
            return original(definition)  # moto answers for what it cannot read
        converted = []
        decimal = as_decimal(parsed, converted)
        return original(json.dumps(decimal) if converted else definition)

    AmazonStateLanguageParser.parse = staticmethod(parse)


def fix_sfn_distributed_map_recurses_once_per_item():
    """A Distributed Map runs up to 10,000 child executions at once, MaxConcurrency
    lowering that (Step Functions guide, "Using Map state in Distributed mode for
    large-scale parallel workloads", https://docs.aws.amazon.com/step-functions/latest/
    dg/state-map-distributed.html: "If you don't specify, Step Functions runs 10,000
    parallel child workflow executions in parallel"), over datasets of millions of items.
    moto's worker calls itself once per item it runs (`_eval_pool`), so a worker that
    runs about 1,000 items hits Python's recursion limit and dies, and the execution
    stays RUNNING for ever; and with MaxConcurrency 0 it starts one thread per item.
    Run each worker as a loop that takes items until none is left, the Map Run has
    failed or the execution has stopped (it then starts no more), start
    min(MaxConcurrency or 10,000, 10,000, items) workers, and end the Map Run when they
    have all ended."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (
        DistributedIterationComponent,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.distributed_item_processor_worker import (
        DistributedItemProcessorWorker,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.job import JobPool

    def worker_loop(self):
        try:
            while self._env.is_running():
                job = self._job_pool.next_job()
                if job is None or not self._env.is_running():
                    return  # no item left, the Map Run failed, or the execution stopped
                job_frame = self._env.open_inner_frame()
                try:
                    self._eval_job(env=job_frame, job=job)
                finally:
                    self._env.delete_frame(job_frame)
                self._job_pool.close_job(job)
                if isinstance(job.job_output, Exception):
                    return
        except Exception as e:  # noqa: BLE001 - fails the Map Run with it, as a failed job does in moto
            LOG.exception("a Distributed Map worker failed")
            with self._job_pool._mutex:
                self._job_pool._worker_exception = self._job_pool._worker_exception or e

    def map_run(self, env, eval_input):
        items = env.stack.pop()
        pool = JobPool(job_program=self._get_iteration_program(), job_inputs=items)
        threads = []
        for _ in range(worker_count(eval_input.map_run_record.max_concurrency, len(items))):
            worker = self._create_worker(env=env, eval_input=eval_input, job_pool=pool)
            thread = threading.Thread(target=worker.eval, daemon=True, name="baton-map-run-worker")
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
        if pool.get_worker_exception() is not None:
            raise pool.get_worker_exception()
        env.stack.append([closed.job_output for closed in pool.get_closed_jobs()])

    DistributedItemProcessorWorker.eval = worker_loop
    DistributedIterationComponent._map_run = map_run


def fix_sfn_distributed_map_items_share_the_parents_execution():
    """Each item of a Distributed Map runs as a child workflow execution with its own
    execution history (Step Functions guide, "Using Map state in Distributed mode",
    https://docs.aws.amazon.com/step-functions/latest/dg/state-map-distributed.html: "each
    child workflow execution has its own execution history, which is separate from the
    parent workflow's"), named by Step Functions (a UUID) under the Map Run's labelled
    state machine, `arn:...:stateMachine:<name>/<label or UUID>` ("Viewing a Distributed
    Map Run execution", https://docs.aws.amazon.com/step-functions/latest/dg/concepts-
    examine-map-run.html), so its ARN is `arn:...:execution:<name>/<label>:<uuid>` (the
    resource "IAM policies for using Distributed Map states" grants
    states:DescribeExecution and StopExecution on). In the item processor the context
    object is the child's: `$$.Execution.Id` and `$$.Execution.Name` are its own. moto
    runs each item as a frame of the parent: `$$.Execution.Id` is the parent's, so a
    nested `startExecution.sync` named from it collides across items, and no child
    exists to describe. Run each item as a MapRunChild: its ARN and name, the context
    object's Execution, its own history (ExecutionStarted ... ExecutionSucceeded /
    Failed / Aborted / TimedOut), status, input, output, error and cause, dates, and
    the Map Run's counts (DescribeMapRun: pending, running, succeeded, failed,
    timedOut, aborted, total; moto counts an item only when it starts and never stops
    counting a failed one as running). A child that ends ABORTED is stopped as an
    execution is (`Execution.stop`), so fix_sfn_stopped_parents_leave_sync_children_running
    stops the `.sync` children it started. Its states run in its worker's thread (moto
    starts, and keeps, a thread per item). Apply after
    fix_sfn_distributed_map_recurses_once_per_item (this wraps its `_map_run`)."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (
        DistributedIterationComponent,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.distributed_item_processor_worker import (
        DistributedItemProcessorWorker,
    )

    original_map_run = DistributedIterationComponent._map_run

    def map_run(self, env, eval_input):
        run = _register_map_run(eval_input.map_run_record, env.stack[-1])
        # What the workers read as the Map state's input (below the items on the stack).
        state_input = env.stack[-2] if len(env.stack) > 1 else None
        run.child_input = lambda index, item: _selected_input(self, env, eval_input, state_input, index, item)
        return original_map_run(self, env, eval_input)

    def eval_job(self, env, job):
        run = map_run_children(self._map_run_record.map_run_arn)
        child = run.start(job.job_index)
        try:
            _enter_child(self, env, job, child)
            _run_program(job.job_program, env)
            outcome = env.program_state()
        except Exception as e:  # noqa: BLE001 - an item's failure is the child's, not the worker's
            outcome = e
        finally:
            child.frame = None
        # Stopped (its execution, a failed Map Run, StopExecution): ABORTED, whatever error
        # the interrupted state raised on its way out.
        _end_child(env, child, outcome, stopped=child.aborted or not self._env.is_running())
        run.ended(child)
        job.job_output = env.states.get_input() if child.exec_status == "SUCCEEDED" else None

    DistributedIterationComponent._map_run = map_run
    DistributedItemProcessorWorker._eval_job = eval_job


def _enter_child(worker, env, job, child):
    """Make `env` (the item's frame) the child's: its input (the item, through
    ItemSelector, evaluated in the parent's context), context object, history."""
    from moto.stepfunctions.parser.api import ExecutionStartedEventDetails, HistoryEventType
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventHistoryContext, EventManager
    from moto.stepfunctions.parser.asl.eval.states import ItemData, MapData

    context = env.states.context_object.context_object_data
    context["Map"] = MapData(Item=ItemData(Index=job.job_index, Value=job.job_input))
    env.states.reset(job.job_input)
    env.stack.append(env.states.get_input())
    worker._eval_input(env_frame=env)
    child.input_value = env.states.get_input()
    # A new dict: the frame shares its parent's `Execution` until now.
    context["Execution"] = child.context(env.aws_execution_details.role_arn)
    child.events = env.event_manager = EventManager()
    env.event_history_context = EventHistoryContext.of_program_start()
    child.frame = env
    if child.aborted:  # stopped before it had a frame to stop
        child.abort()
    child.events.add_event(
        context=env.event_history_context, event_type=HistoryEventType.ExecutionStarted,
        event_details=EventDetails(executionStartedEventDetails=ExecutionStartedEventDetails(
            input=child.execution_input, inputDetails={"truncated": False},
            roleArn=env.aws_execution_details.role_arn)),
        update_source_event_id=False)


def _selected_input(component, env, eval_input, state_input, index, item):
    """The input a child would get for the item at `index` (for an item no child was
    started for): its ItemSelector (or Parameters) evaluated as a worker does; the item
    itself when that fails."""
    import types

    from moto.stepfunctions.parser.asl.eval.states import ItemData, MapData

    frame = env.open_inner_frame()
    try:
        frame.states.context_object.context_object_data["Map"] = MapData(Item=ItemData(Index=index, Value=item))
        frame.states.reset(item)
        worker = component._create_worker(env=types.SimpleNamespace(stack=[state_input]), eval_input=eval_input,
                                          job_pool=None)
        worker._eval_input(env_frame=frame)
        return frame.states.get_input()
    except Exception:  # noqa: BLE001 - the item is the next best thing
        LOG.exception("selecting the input of pending item %s", index)
        return item
    finally:
        env.delete_frame(frame)


def _selected_items(component, env, eval_input, state_input, items):
    """Each item as its ItemSelector (or Parameters) selects it, evaluated as a worker
    does (in the Map state's context, `$$.Map.Item.Index` and `Value` the item's); the
    items themselves when the state has neither. Raises what a selection raises."""
    import types

    from moto.stepfunctions.parser.asl.eval.states import ItemData, MapData

    if eval_input.item_selector is None and eval_input.parameters is None:
        return list(items)
    worker = component._create_worker(env=types.SimpleNamespace(stack=[state_input]), eval_input=eval_input,
                                      job_pool=None)
    selected = []
    for index, item in enumerate(items):
        frame = env.open_inner_frame()
        try:
            frame.states.context_object.context_object_data["Map"] = MapData(Item=ItemData(Index=index, Value=item))
            frame.states.reset(item)
            worker._eval_input(env_frame=frame)
            selected.append(frame.states.get_input())
        finally:
            env.delete_frame(frame)
    return selected


def _run_program(program, env):
    """Run an item's program in this thread (moto's Program.eval starts a thread for
    each, to apply a TimeoutSeconds an item processor cannot have)."""
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent

    if program.timeout_seconds is not None:
        program.eval(env)
        return
    env.next_state_name = program.start_at.start_at_name
    EvalComponent.eval(program, env)


def _end_child(env, child, outcome, stopped=False):
    """Record how the child ended (`outcome`: its program's state, or the exception it
    raised; `stopped`: it was stopped, so ABORTED), then its terminal history event."""
    from moto.stepfunctions.parser.api import HistoryEventType
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.asl.eval.program_state import (
        ProgramEnded,
        ProgramError,
        ProgramStopped,
        ProgramTimedOut,
    )
    from moto.stepfunctions.parser.backend.execution import Execution

    if stopped and not isinstance(outcome, ProgramStopped):
        status = "ABORTED"
    elif isinstance(outcome, Exception):
        pair = getattr(outcome, "extract_error_cause_pair", lambda: None)() or (
            "States.Runtime", f"{type(outcome).__name__}({outcome})")
        status, (child.error, child.cause) = "FAILED", pair
        LOG.debug("map run child %s failed: %s", child.exec_arn, outcome)
    elif isinstance(outcome, ProgramError):
        status, child.error, child.cause = "FAILED", outcome.error.get("error"), outcome.error.get("cause")
    elif isinstance(outcome, ProgramStopped):
        status, child.error, child.cause = "ABORTED", outcome.error, outcome.cause
    elif isinstance(outcome, ProgramTimedOut):
        status = "TIMED_OUT"
    else:
        assert isinstance(outcome, ProgramEnded), outcome
        status, child.output = "SUCCEEDED", json_text(env.states.get_input())
    child.stop_date = datetime.datetime.now(tz=datetime.timezone.utc)
    if child.events is not None:
        details = {
            "SUCCEEDED": ("executionSucceededEventDetails", {"output": child.output,
                                                             "outputDetails": {"truncated": False}}),
            "FAILED": ("executionFailedEventDetails", {k: v for k, v in (("error", child.error),
                                                                          ("cause", child.cause)) if v}),
            "ABORTED": ("executionAbortedEventDetails", {}),
            "TIMED_OUT": ("executionTimedOutEventDetails", {}),
        }[status]
        event_type = {"SUCCEEDED": HistoryEventType.ExecutionSucceeded, "FAILED": HistoryEventType.ExecutionFailed,
                      "ABORTED": HistoryEventType.ExecutionAborted, "TIMED_OUT": HistoryEventType.ExecutionTimedOut}
        child.events.add_event(context=env.event_history_context, event_type=event_type[status],
                               event_details=EventDetails(**{details[0]: details[1]}))
    child.exec_status = status
    if status == "ABORTED":
        # As any stopped execution: the fixes wrapping Execution.stop stop its .sync children.
        Execution.stop(child, stop_date=child.stop_date, error=child.error, cause=child.cause)


def fix_sfn_map_run_children_are_invisible_to_the_api():
    """A Map Run's child executions are executions of the API: DescribeExecution answers
    for one with its `mapRunArn` ("The Amazon Resource Name (ARN) that identifies a Map
    Run, which dispatched this execution"), GetExecutionHistory gives its own history,
    StopExecution stops it, and ListExecutions with `mapRunArn` (instead of
    `stateMachineArn`) lists them, each with `mapRunArn` and `itemCount` (API reference,
    DescribeExecution, ListExecutions, ExecutionListItem). moto has no child
    executions, answers ExecutionDoesNotExist for their ARNs and fails ListExecutions
    with mapRunArn (HTTP 500). Answer for the children of
    fix_sfn_distributed_map_items_share_the_parents_execution; pages of ListExecutions
    as GetExecutionHistory's (100 by default, 1,000 at most). Apply before
    fix_sfn_requests_skip_length_constraints (this replaces response methods)."""
    from moto.core.exceptions import AWSError
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend
    from moto.stepfunctions.responses import StepFunctionResponse

    from .stepfunctions import paged_answer

    class ResourceNotFound(AWSError):
        TYPE = "ResourceNotFound"
        STATUS = 400

    class ValidationException(AWSError):
        TYPE = "ValidationException"
        STATUS = 400

    original_describe = StepFunctionsParserBackend.describe_execution

    def describe_execution(self, execution_arn):
        return child_execution(execution_arn) or original_describe(self, execution_arn)

    original_stop = StepFunctionsParserBackend.stop_execution

    def stop_execution(self, execution_arn):
        child = child_execution(execution_arn)
        if child is None:
            return original_stop(self, execution_arn)
        if child.exec_status == "RUNNING":
            child.abort()
            child.stop_date = child.stop_date or datetime.datetime.now(tz=datetime.timezone.utc)
        return child

    original_describe_response = StepFunctionResponse.describe_execution

    def describe_execution_response(self):
        result = original_describe_response(self)
        child = child_execution(self._get_param("executionArn"))
        if child is not None and isinstance(getattr(result, "result", None), dict):
            result.result["mapRunArn"] = child.map_run_arn
        return result

    original_list = StepFunctionResponse.list_executions

    def list_executions(self):
        map_run_arn = self._get_param("mapRunArn")
        if not map_run_arn:
            return original_list(self)
        if self._get_param("stateMachineArn"):
            raise ValidationException("Only one of stateMachineArn or mapRunArn may be specified")
        run = map_run_children(map_run_arn)
        if run is None:
            raise ResourceNotFound(f"Map Run Does Not Exist: '{map_run_arn}'")
        status = self._get_param("statusFilter")
        items = [child.list_item() for child in run.children() if not status or child.exec_status == status]
        return paged_answer("executions", items, self._get_int_param("maxResults"), self._get_param("nextToken"))

    StepFunctionsParserBackend.describe_execution = describe_execution
    StepFunctionsParserBackend.stop_execution = stop_execution
    StepFunctionResponse.describe_execution = describe_execution_response
    StepFunctionResponse.list_executions = list_executions


def fix_sfn_distributed_map_ignores_failed_items():
    """A Distributed Map's Map Run fails with `States.ExceedToleratedFailureThreshold`
    once its failed (or timed-out) items exceed ToleratedFailureCount or
    ToleratedFailurePercentage (of all items), either when both are given; by default
    (neither given) no failure is tolerated, and 100 percent tolerates all (Step
    Functions guide, "Tolerated failure threshold for Distributed Map state",
    https://docs.aws.amazon.com/step-functions/latest/dg/maprun-fail-threshold.html).
    The children still running are then stopped (API reference, MapRunExecutionCounts:
    `aborted` counts those "stopped ... by Step Functions because the Map Run failed")
    and no more start. moto ignores failed items altogether (its parser says the fields
    "currently have no effect"): the Map succeeds with `null` for each failed item.
    Count each child that ends FAILED or TIMED_OUT against the threshold the state
    gives (the `...Path` forms evaluated by moto; UpdateMapRun's values count too);
    once exceeded, stop the running children and fail the Map Run with AWS's error
    and cause. Apply after fix_sfn_distributed_map_items_share_the_parents_execution."""
    from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.distributed_item_processor_worker import (
        DistributedItemProcessorWorker,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.map_run_record import (
        MapRunRecord,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.state_map import StateMap
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.tolerated_failure import (
        ToleratedFailureCountDecl,
        ToleratedFailurePercentageDecl,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    # Which of the two fields the state gives: moto's defaults (0 and 0.0) read as given.
    original_from_props = StateMap.from_state_props

    def from_state_props(self, state_props):
        original_from_props(self, state_props)
        self.baton_tolerance_given = (state_props.get(ToleratedFailureCountDecl) is not None,
                                      state_props.get(ToleratedFailurePercentageDecl) is not None)

    original_eval_execution = StateMap._eval_execution

    def eval_execution(self, env):
        env.baton_tolerance_given = getattr(self, "baton_tolerance_given", (True, True))
        return original_eval_execution(self, env)

    original_update = MapRunRecord.update

    def update(self, max_concurrency, tolerated_failure_count, tolerated_failure_percentage):
        original_update(self, max_concurrency, tolerated_failure_count, tolerated_failure_percentage)
        count_given, percentage_given = getattr(self, "baton_tolerance_given", (True, True))
        self.baton_tolerance_given = (count_given or tolerated_failure_count is not None,
                                      percentage_given or tolerated_failure_percentage is not None)

    def exceeded(record):
        count_given, percentage_given = getattr(record, "baton_tolerance_given", (True, True))
        counts = record.item_counter
        return threshold_exceeded(
            counts.failed.get() + counts.timed_out.get(), counts.total.get(),
            record.tolerated_failure_count if count_given else None,
            float(record.tolerated_failure_percentage) if percentage_given else None)

    original_eval_job = DistributedItemProcessorWorker._eval_job

    def eval_job(self, env, job):
        record = self._map_run_record
        if not hasattr(record, "baton_tolerance_given"):
            record.baton_tolerance_given = getattr(self._env, "baton_tolerance_given", (True, True))
        original_eval_job(self, env, job)
        run = map_run_children(record.map_run_arn)
        child = run.by_index.get(job.job_index) if run else None
        if child is None or child.exec_status not in ("FAILED", "TIMED_OUT") or not exceeded(record):
            return
        with run.lock:
            first, run.exceeded = not run.exceeded, True
        if first:
            failure = FailureEventException(FailureEvent(
                env=env, error_name=StatesErrorName(typ=StatesErrorNameType.StatesExceedToleratedFailureThreshold),
                event_type=HistoryEventType.MapRunFailed,
                event_details=EventDetails(mapRunFailedEventDetails=MapRunFailedEventDetails(
                    error=EXCEEDED_ERROR, cause=EXCEEDED_CAUSE))))
            job.job_output = failure
            with self._job_pool._mutex:  # no worker takes another item from now on
                self._job_pool._worker_exception = self._job_pool._worker_exception or failure
        for other in run.running():
            other.abort(error=EXCEEDED_ERROR, cause=EXCEEDED_CAUSE)

    StateMap.from_state_props = from_state_props
    StateMap._eval_execution = eval_execution
    MapRunRecord.update = update
    DistributedItemProcessorWorker._eval_job = eval_job


class MapRunAborted(Exception):
    """Raised out of an aborted Map Run to its Map state, which ends without its
    MapStateSucceeded event (the execution is stopping)."""


def fix_sfn_stopped_parents_leave_map_runs_running():
    """When an execution with a Map Run in progress is stopped, the Map Run is aborted:
    its running child executions are stopped (ABORTED: API reference,
    MapRunExecutionCounts, `aborted`: "stopped by the user or by Step Functions"), none
    more start, the Map Run's status is ABORTED (DescribeMapRun, MapRunStatus) and the
    parent's history has `MapRunAborted` (API reference, HistoryEvent). moto's frames
    do stop, but the Map Run then records MapRunSucceeded and SUCCEEDED (and the Map
    state MapStateSucceeded). Record MapRunAborted and ABORTED instead, whenever the
    Map Run's execution (or the branch it runs in) has stopped running; the children
    themselves are stopped by their frames (and their `.sync` children by
    fix_sfn_distributed_map_items_share_the_parents_execution). Replaces moto's
    DistributedIterationComponent._eval_body: apply before
    fix_sfn_result_writer_writes_an_empty_manifest, which wraps it."""
    from moto.stepfunctions.parser.api import (
        HistoryEventType,
        MapRunFailedEventDetails,
        MapRunStartedEventDetails,
        MapRunStatus,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEventException
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (
        DistributedIterationComponent,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.state_map import StateMap
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager

    def add(env, event_type, **details):
        env.event_manager.add_event(context=env.event_history_context, event_type=event_type,
                                    event_details=EventDetails(**details) if details else None)

    def abort(env, record):
        run = map_run_children(record.map_run_arn)
        for child in run.running() if run else ():
            child.abort()  # stopped with their frames already; this is for a branch's Map Run
        add(env, HistoryEventType.MapRunAborted)
        record.set_stop(status=MapRunStatus.ABORTED)
        raise MapRunAborted(record.map_run_arn)

    def eval_body(self, env):
        eval_input = env.stack.pop()
        record = eval_input.map_run_record
        add(env, HistoryEventType.MapRunStarted,
            mapRunStartedEventDetails=MapRunStartedEventDetails(mapRunArn=record.map_run_arn))
        parent_events = env.event_manager
        try:
            if eval_input.item_reader:
                eval_input.item_reader.eval(env=env)
            else:
                env.stack.append(eval_input.input_items)
            env.event_manager = EventManager()  # the items' events are their children's
            self._map_run(env=env, eval_input=eval_input)
        except Exception as e:
            env.event_manager = parent_events
            if not env.is_running():
                abort(env, record)
            pair = e.extract_error_cause_pair() if isinstance(e, FailureEventException) else None
            details = MapRunFailedEventDetails(**{k: v for k, v in zip(("error", "cause"), pair or ()) if v})
            add(env, HistoryEventType.MapRunFailed, mapRunFailedEventDetails=details)
            record.set_stop(status=MapRunStatus.FAILED)
            raise
        finally:
            env.event_manager = parent_events
        if not env.is_running():
            abort(env, record)
        add(env, HistoryEventType.MapRunSucceeded)
        record.set_stop(status=MapRunStatus.SUCCEEDED)

    original_eval_execution = StateMap._eval_execution

    def eval_execution(self, env):
        try:
            original_eval_execution(self, env)
        except MapRunAborted:
            env.stack.append(None)  # the state's (unused) output: the execution is stopping

    DistributedIterationComponent._eval_body = eval_body
    StateMap._eval_execution = eval_execution


def fix_sfn_result_writer_writes_an_empty_manifest():
    """With a ResultWriter, Step Functions "consolidates all child workflow execution
    data, such as execution input and output, ARN, and execution status. It then exports
    executions with the same status to their respective files" under
    `<Prefix>/<map run id>/`: `SUCCEEDED_<n>.json`, `FAILED_<n>.json`, `PENDING_<n>.json`
    (JSON arrays of entries: ExecutionArn, Input and Output as JSON text, InputDetails,
    OutputDetails, Name, RedriveCount, RedriveStatus, StartDate, StateMachineArn, Status,
    StopDate; Error and Cause instead of Output for failures), then `manifest.json`
    (DestinationBucket, MapRunArn, ResultFiles {FAILED, PENDING, SUCCEEDED: [{Key, Size}]}),
    and the Map state's output is `{"MapRunArn", "ResultWriterDetails": {"Bucket", "Key"}}`
    (Step Functions guide, "ResultWriter (Map)", https://docs.aws.amazon.com/step-functions/
    latest/dg/input-output-resultwriter.html, Transformation NONE, the default when
    exporting; a bucket it cannot write to fails the state with States.ResultWriterFailed).
    Results are exported when the Map Run fails on its tolerated failure threshold too
    (what FAILED and PENDING files are for). moto writes only the manifest, with empty
    lists ("TODO: generate result files"), and nothing when the Map Run fails. Write them
    all, through the state machine role's S3 client as moto's interpreter makes it (so
    the role's policies decide, fix_asl_integrations_call_with_fixed_keys), from the
    children of fix_sfn_distributed_map_items_share_the_parents_execution. Not
    reproduced: WriterConfig (moto's parser refuses it). Apply after
    fix_sfn_stopped_parents_leave_map_runs_running (this wraps the _eval_body it sets)."""
    from moto.stepfunctions.parser.api import HistoryEventType
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (
        DistributedIterationComponent,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval.resource_eval_s3 import (
        ResourceEvalS3,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.state_map import StateMap
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    def writer_failed(env, cause):
        return FailureEventException(FailureEvent(
            env=env, error_name=StatesErrorName(typ=StatesErrorNameType.StatesResultWriterFailed),
            event_type=HistoryEventType.MapStateFailed,
            event_details=EventDetails(executionFailedEventDetails={
                "error": StatesErrorNameType.StatesResultWriterFailed.to_name(), "cause": cause})))

    def put_object(env, resource_runtime_part, state_credentials):
        parameters = env.stack.pop()
        env.stack.pop()  # the children's outputs, which the files hold instead
        record = env.map_run_record_pool_manager.get(getattr(env, "baton_map_run_arn", None))
        if record is None:
            record = env.map_run_record_pool_manager.get_all().pop()  # moto's own choice
        run = map_run_children(record.map_run_arn) or MapRunChildren(record, [])
        bucket, prefix = parameters["Bucket"], parameters.get("Prefix") or ""
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        by_status = run.result_entries()
        files, listed = result_files(record.map_run_arn.split(":")[-1], prefix, by_status)
        manifest_key = f"{prefix}{record.map_run_arn.split(':')[-1]}/manifest.json"
        manifest = {"DestinationBucket": bucket, "MapRunArn": record.map_run_arn, "ResultFiles": listed}
        s3 = ResourceEvalS3._get_s3_client(resource_runtime_part=resource_runtime_part,
                                           state_credentials=state_credentials)
        try:
            for key, body in files.items():
                s3.put_object(Bucket=bucket, Key=key, Body=body)
            s3.put_object(Bucket=bucket, Key=manifest_key, Body=json.dumps(manifest, indent=2).encode("utf-8"))
        except Exception as e:  # noqa: BLE001 - any refusal of the writes is the state's error
            raise writer_failed(env, f"failed to write the results of {record.map_run_arn} to s3://{bucket}/"
                                     f"{prefix}: {e}") from e
        written = run.started()  # each in SUCCEEDED or FAILED
        for counter, n in ((record.item_counter, sum(child.item_count for child in written)),
                           (record.execution_counter, len(written))):
            counter.results_written.offset(n - counter.results_written.get())
        env.stack.append({"MapRunArn": record.map_run_arn,
                          "ResultWriterDetails": {"Bucket": bucket, "Key": manifest_key}})

    original_eval_body = DistributedIterationComponent._eval_body

    def eval_body(self, env):
        env.baton_map_run_arn = env.stack[-1].map_run_record.map_run_arn
        return original_eval_body(self, env)

    original_eval_execution = StateMap._eval_execution

    def eval_execution(self, env):
        try:
            return original_eval_execution(self, env)
        except FailureEventException as e:
            exceeded = (e.extract_error_cause_pair() or (None,))[0] == EXCEEDED_ERROR
            if self.result_writer is not None and exceeded and getattr(env, "baton_map_run_arn", None):
                try:
                    env.stack.append(None)  # in place of the outputs the writer pops
                    self.result_writer.eval(env)
                    env.stack.pop()
                except Exception:  # noqa: BLE001 - the Map Run's own error is the state's
                    LOG.exception("writing the results of a failed Map Run")
            raise

    ResourceEvalS3._handle_put_object = staticmethod(put_object)
    DistributedIterationComponent._eval_body = eval_body
    StateMap._eval_execution = eval_execution


class ItemBatcher:
    """A Distributed Map's ItemBatcher, as the state machine gives it: MaxItemsPerBatch
    and MaxInputBytesPerBatch (or their reference paths, read from the Map state's input
    when its Map Run starts) and BatchInput (an object is a payload template, parsed by
    moto's interpreter as a Pass state's Parameters; any other value is taken as it is)."""

    def __init__(self, fields):
        from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

        self.fields = fields
        self.batch_input = None
        if isinstance(fields.get("BatchInput"), dict):
            program, _ = AmazonStateLanguageParser.parse(json.dumps({"StartAt": "BatchInput", "States": {
                "BatchInput": {"Type": "Pass", "Parameters": fields["BatchInput"], "End": True}}}))
            self.batch_input = program.states.states["BatchInput"].parameters

    def limit(self, field, state_input):
        """MaxItemsPerBatch or MaxInputBytesPerBatch (`field`) for this Map Run: the
        field's value, or its path's in the state's input; None when neither is given."""
        from moto.stepfunctions.parser.asl.utils.json_path import extract_json

        if field in self.fields:
            return self.fields[field]
        path = self.fields.get(field + "Path")
        if path is None:
            return None
        value = extract_json(path, state_input)
        if type(value) is not int or value <= 0:
            raise ValueError(f"The {field}Path field ({path}) must select a positive integer in the state input: "
                             f"{json_text(value)}")
        return value

    def evaluate_batch_input(self, env, state_input):
        """BatchInput evaluated against the Map state's input (and context); None when the
        ItemBatcher has none."""
        if self.batch_input is None:
            return self.fields.get("BatchInput")
        frame = env.open_inner_frame()
        try:
            frame.states.reset(input_value=state_input)
            frame.stack.append(state_input)
            self.batch_input.eval(frame)
            return frame.stack[-1]
        finally:
            env.delete_frame(frame)


def fix_sfn_distributed_map_refuses_item_batcher():
    """A Distributed Map's `ItemBatcher` ("MaxItemsPerBatch" and/or "MaxInputBytesPerBatch",
    or their "...Path" forms, and an optional "BatchInput") makes each child workflow
    execution process a batch of items: "Step Functions adds the items to an Items array.
    It then passes the array as input to each child workflow execution", with BatchInput's
    fixed JSON alongside ("Fixed JSON input to include in each batch passed to each child
    workflow execution", AWS CDK, ItemBatcherProps), `{"Items": [...], "BatchInput": {...}}`,
    a batch at most MaxItemsPerBatch items and MaxInputBytesPerBatch bytes, never above
    256 KiB (Step Functions guide, "ItemBatcher (Map)", https://docs.aws.amazon.com/
    step-functions/latest/dg/input-output-itembatcher.html, whose quoted opening is all
    the search tools return; the byte limit's reading, the child's whole input with
    BatchInput, is the stricter one, unconfirmed). The items are selected first, then
    batched, in order: "the interpreter uses the ItemSelector field to override each single element of the
    Items Array to produce an array of selected items ... then uses the ItemBatcher field
    to ... produce an array of batched selected items", and without a ResultWriter the
    Map's output has "one element for each batched sub-array ... in the same order"
    (Amazon States Language, "Batching Items", "Processing Items", "Writing Results",
    https://states-language.net/spec.html, which also requires at least one of the four
    limits, a field and its Path never together, positive integers). The tolerated
    failure threshold counts failed items, not children (API reference, UpdateMapRun:
    "The maximum number of failed items before the Map Run fails"); DescribeMapRun's
    itemCounts count items, its executionCounts children; ListExecutions(mapRunArn)'s
    itemCount is a child's items (API reference, MapRunItemCounts,
    MapRunExecutionCounts, ExecutionListItem). moto's grammar has no ItemBatcher:
    CreateStateMachine answers InvalidDefinition. Carry a Distributed Map's ItemBatcher
    through moto's parser in the state's Comment (checked as the specification says,
    refused with InvalidDefinition otherwise); when its Map Run starts, select each item,
    batch them and run a child execution per batch, counting the items it holds
    (compat.distributed_map.MapRunChildren's weights): the threshold of
    fix_sfn_distributed_map_ignores_failed_items counts items, the ResultWriter of
    fix_sfn_result_writer_writes_an_empty_manifest writes an entry per child, its Input
    the batch. Not reproduced: an ItemBatcher in an INLINE Map or in a JSONata state
    (moto still refuses both at creation). Apply after
    fix_sfn_distributed_map_items_share_the_parents_execution (this wraps the `_map_run`
    it sets)."""
    from moto.stepfunctions.parser.asl.component.common.comment import Comment
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (
        DistributedIterationComponent,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.state_map import StateMap
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser, ASLParserException

    original_parse = AmazonStateLanguageParser.parse

    def carried(node, at, jsonata, problems):
        """`node` with each Distributed Map's ItemBatcher moved into its Comment."""
        if isinstance(node, list):
            return [carried(value, f"{at}/{i}", jsonata, problems) for i, value in enumerate(node)]
        if not isinstance(node, dict):
            return node
        jsonata = node.get("QueryLanguage", "JSONata" if jsonata else "JSONPath") == "JSONata"
        node = {key: carried(value, f"{at}/{key}", jsonata, problems) for key, value in node.items()}
        processor = node.get("ItemProcessor") or node.get("Iterator") or {}
        config = processor.get("ProcessorConfig") if isinstance(processor, dict) else None
        distributed = isinstance(config, dict) and config.get("Mode") == "DISTRIBUTED"
        if node.get("Type") == "Map" and "ItemBatcher" in node and distributed and not jsonata:
            batcher = node.pop("ItemBatcher")
            problems.extend(item_batcher_problems(batcher, at))
            payload = {"ItemBatcher": batcher, "Comment": node.get("Comment")}
            node["Comment"] = ITEM_BATCHER_MARKER + base64.urlsafe_b64encode(
                json.dumps(payload).encode("utf-8")).decode("ascii")
        return node

    def parse(definition):
        try:
            parsed = json.loads(definition)
        except (TypeError, ValueError):
            return original_parse(definition)  # moto answers for what it cannot read
        if not isinstance(definition, str) or "ItemBatcher" not in definition:
            return original_parse(definition)
        problems = []
        moved = carried(parsed, "", False, problems)
        if problems:
            raise ASLParserException(errors=problems)
        return original_parse(json.dumps(moved))

    original_from_props = StateMap.from_state_props

    def from_state_props(self, state_props):
        original_from_props(self, state_props)
        text = getattr(self.comment, "comment", None)
        if not (isinstance(text, str) and text.startswith(ITEM_BATCHER_MARKER)):
            return
        payload = json.loads(base64.urlsafe_b64decode(text[len(ITEM_BATCHER_MARKER):]))
        self.comment = Comment(payload["Comment"]) if payload["Comment"] is not None else None
        self.iteration_component.baton_item_batcher = ItemBatcher(payload["ItemBatcher"])

    original_map_run = DistributedIterationComponent._map_run

    def map_run(self, env, eval_input):
        batcher = getattr(self, "baton_item_batcher", None)
        if batcher is None:
            return original_map_run(self, env, eval_input)
        items = env.stack.pop()
        state_input = env.stack[-1] if env.stack else None
        selected = _selected_items(self, env, eval_input, state_input, items)
        batches = item_batches(selected, batcher.limit("MaxItemsPerBatch", state_input),
                               batcher.limit("MaxInputBytesPerBatch", state_input),
                               batcher.evaluate_batch_input(env, state_input))
        # The children get their batches as they are: the items are selected already.
        batched = copy.copy(eval_input)
        batched.item_selector = batched.parameters = None
        _register_map_run(eval_input.map_run_record, batches, [len(batch["Items"]) for batch in batches])
        env.stack.append(batches)
        return original_map_run(self, env, batched)

    AmazonStateLanguageParser.parse = staticmethod(parse)
    StateMap.from_state_props = from_state_props
    DistributedIterationComponent._map_run = map_run


def fix_sfn_item_reader_lists_only_the_first_page():
    """A Distributed Map whose ItemReader is `arn:aws:states:::s3:listObjectsV2` runs
    one item per object under the bucket and prefix, all of them: the reader is "used
    to iterate all objects in the S3 bucket/prefix", and without a `MaxItems` "the
    Distributed Map state will iterate over all items provided by the ItemReader" (AWS
    CDK, `S3ObjectsItemReader`, `resource` and `maxItems`, https://docs.aws.amazon.com/
    cdk/api/v2/docs/aws-cdk-lib.aws_stepfunctions.S3ObjectsItemReader.html; Step
    Functions guide, "ItemReader (Map)", https://docs.aws.amazon.com/step-functions/
    latest/dg/input-output-itemreader.html, which lists the objects under a prefix as
    the dataset). moto's interpreter makes one ListObjectsV2 call and runs the items of
    its first page, 1,000 keys at most: a fan-out over 100,000 objects ran 1,000 and
    succeeded. Follow `NextContinuationToken` while `IsTruncated`, in the listing's
    order. A listing whose first page has no `Contents` (nothing under the prefix)
    stays as moto has it (a KeyError, `States.Runtime`): what AWS does there is not
    read here."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_eval_s3 import (
        ResourceEvalS3,
    )

    def handle_list_objects_v2(env, resource_runtime_part, state_credentials):
        s3_client = ResourceEvalS3._get_s3_client(
            resource_runtime_part=resource_runtime_part, state_credentials=state_credentials)
        parameters = dict(env.stack.pop())
        response = s3_client.list_objects_v2(**parameters)
        contents = list(response["Contents"])
        while response.get("IsTruncated") and response.get("NextContinuationToken"):
            response = s3_client.list_objects_v2(**parameters, ContinuationToken=response["NextContinuationToken"])
            contents += response.get("Contents", [])
        env.stack.append(contents)

    ResourceEvalS3._handle_list_objects_v2 = staticmethod(handle_list_objects_v2)


def fix_sfn_definitions_accept_duplicate_map_labels():
    """A Map state's `Label` names its Map Runs (`...:mapRun:<state machine>/<label>:<id>`)
    and its children's state machine (`...:stateMachine:<state machine>/<label>`), so AWS
    requires it to be unique within the definition (Step Functions guide, "Using Map
    state in Distributed mode", Label: "Labels can't exceed 40 characters in length, must
    be unique within a state machine definition, and can't contain" whitespace,
    wildcards, brackets, special and control characters). moto's parser checks the
    length and the characters but creates a state machine whose two Distributed Maps
    share a Label (the fan-out example's did, and every local test passed; a review
    against the guide found it). Refuse such a definition on CreateStateMachine and
    UpdateStateMachine with InvalidDefinition, as AWS refuses a definition it does not
    take (API reference, CreateStateMachine). Needs fix_sfn_parser_errors_have_no_code
    for the error's code."""
    refuse_definitions(map_label_problems)
