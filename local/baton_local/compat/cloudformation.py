"""CloudFormation: the SAM transform, state machines defined in S3 with
substitutions, created where executions run, bucket and queue policies, and the
managed policies of roles."""

import functools
import json

from ._shared import dumps


def fix_cloudformation_ignores_sam_transform():
    """moto's CloudFormation ignores `Transform: AWS::Serverless-2016-10-31` and skips
    every AWS::Serverless::* resource. Run aws-sam-translator (what CloudFormation
    runs on AWS) on such templates before moto reads them. Packaged templates only:
    CodeUri and DefinitionUri must already be S3 locations, as `sam package` leaves
    them."""
    from moto.cloudformation import models

    class NoManagedPolicies:
        """The template names no managed policies by name; nothing to look up."""

        def load(self):
            return {}

    original = models.Stack.parse_template

    def translated(template_dict):
        if template_dict.get("Transform") != "AWS::Serverless-2016-10-31":
            return template_dict
        from samtranslator.translator.transform import transform

        return transform(template_dict, {}, NoManagedPolicies())

    def parse_template(template):
        return translated(original(template))

    def changeset_parse_template(self):
        self.template_dict = translated(original(self.template))

    models.Stack.parse_template = staticmethod(parse_template)
    models.ChangeSet._parse_template = changeset_parse_template


def fix_cloudformation_state_machines_ignore_substitutions():
    """moto's CloudFormation creates state machines from DefinitionString only,
    ignores DefinitionS3Location and DefinitionSubstitutions, and puts them in the
    store that never executes. Read the definition where it is, substitute, and
    create the state machine where executions run."""
    from moto.s3.models import s3_backends
    from moto.stepfunctions.models import StateMachine
    from moto.stepfunctions.responses import get_backend

    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = cloudformation_json["Properties"]
        name = properties.get("StateMachineName", resource_name)
        definition = properties.get("DefinitionString") or properties.get("Definition") or ""
        location = properties.get("DefinitionS3Location")
        if location:
            backend = s3_backends[account_id]["aws"]
            definition = backend.get_object(location["Bucket"], location["Key"]).value.decode()
        if isinstance(definition, dict):
            definition = dumps(definition)
        for key, value in (properties.get("DefinitionSubstitutions") or {}).items():
            definition = definition.replace("${" + key + "}", str(value))
        tags = [{"key": t["Key"], "value": t["Value"]} for t in properties.get("Tags", [])]
        return get_backend(account_id, region_name).create_state_machine(
            name, definition, properties.get("RoleArn", ""), tags=tags, sm_type=properties.get("StateMachineType")
        )

    StateMachine.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)


def _policy_json(document):
    """A PolicyDocument property (a mapping, or JSON text) as JSON text."""
    return document if isinstance(document, str) else dumps(document)


def _queue_of(url, account_id, region_name):
    """moto's SQS queue that a queue URL (what Ref of an AWS::SQS::Queue gives) names, or
    None: https://sqs.<region>.amazonaws.com/<account>/<name> or any host/<account>/<name>."""
    from urllib.parse import urlparse

    from moto.sqs.models import sqs_backends

    parsed = urlparse(str(url))
    parts = [p for p in parsed.path.split("/") if p]
    if not parts:
        return None
    name = parts[-1]
    account = parts[-2] if len(parts) >= 2 and parts[-2].isdigit() else account_id
    host = parsed.hostname or ""
    region = host.split(".")[1] if host.startswith("sqs.") and host.count(".") >= 2 else region_name
    return sqs_backends[account][region].queues.get(name)


def fix_cloudformation_skips_bucket_and_queue_policies():
    """moto's CloudFormation has no model for `AWS::S3::BucketPolicy` or
    `AWS::SQS::QueuePolicy`: it warns "No Moto CloudFormation support", creates the
    rest of the stack and leaves the bucket and the queues without a policy, so a
    stack's resource policies (a TLS-only Deny, who may send to or read a queue) never
    take part in a local request. CloudFormation applies them: AWS::S3::BucketPolicy
    "Applies an Amazon S3 bucket policy to an Amazon S3 bucket" (Bucket, PolicyDocument;
    CloudFormation template reference, "AWS::S3::BucketPolicy",
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-s3-bucketpolicy.html)
    and AWS::SQS::QueuePolicy "applies a policy to Amazon SQS queues" (Queues: "The URLs
    of the queues to which you want to add the policy", PolicyDocument; "AWS::SQS::
    QueuePolicy", https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-sqs-queuepolicy.html).
    Register both types: the bucket policy is put on the bucket, the queue policy is
    set as the Policy attribute of each queue in Queues (Ref and GetAtt resolved by
    moto's parser); an update replaces them, and deleting the stack removes them from
    the bucket and the queues that still exist."""
    from moto.cloudformation import parsing
    from moto.core.common_models import CloudFormationModel
    from moto.s3.models import s3_backends
    from moto.utilities.utils import get_partition

    if getattr(parsing.get_model_map().get("AWS::S3::BucketPolicy"), "baton", False):
        return  # applied already

    class StackPolicy:
        """What the two policy resources share: no name of their own, and an update
        that removes the old policy before it puts the new one. A mixin: moto lists
        its models as CloudFormationModel's direct subclasses."""

        def __init__(self, resource_name, account_id, region_name):
            self.resource_name = resource_name
            self.account_id = account_id
            self.region_name = region_name

        @staticmethod
        def cloudformation_name_type():
            return ""

        @classmethod
        def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                            account_id, region_name):
            original_resource.delete(account_id, region_name)
            return cls.create_from_cloudformation_json(original_resource.resource_name, cloudformation_json,
                                                       account_id, region_name)

    class BucketPolicy(StackPolicy, CloudFormationModel):
        baton = True

        def __init__(self, resource_name, bucket, account_id, region_name):
            super().__init__(resource_name, account_id, region_name)
            self.bucket = bucket

        @staticmethod
        def cloudformation_type():
            return "AWS::S3::BucketPolicy"

        @classmethod
        def has_cfn_attr(cls, attr):
            return False

        @property
        def physical_resource_id(self):
            return self.bucket

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name,
                                            **kwargs):
            properties = cloudformation_json["Properties"]
            bucket = properties["Bucket"]
            backend = s3_backends[account_id][get_partition(region_name)]
            backend.put_bucket_policy(bucket, _policy_json(properties["PolicyDocument"]).encode())
            return cls(resource_name, bucket, account_id, region_name)

        def delete(self, account_id, region_name):
            backend = s3_backends[self.account_id][get_partition(self.region_name)]
            if self.bucket in backend.buckets:
                backend.delete_bucket_policy(self.bucket)

    class QueuePolicy(StackPolicy, CloudFormationModel):
        def __init__(self, resource_name, queues, account_id, region_name):
            super().__init__(resource_name, account_id, region_name)
            self.queues = queues

        @staticmethod
        def cloudformation_type():
            return "AWS::SQS::QueuePolicy"

        @classmethod
        def has_cfn_attr(cls, attr):
            return attr == "Id"

        @property
        def physical_resource_id(self):
            return self.resource_name

        def get_cfn_attribute(self, attribute_name):
            from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

            if attribute_name == "Id":
                return self.resource_name
            raise UnformattedGetAttTemplateException()

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name,
                                            **kwargs):
            from moto.sqs.exceptions import QueueDoesNotExist

            properties = cloudformation_json["Properties"]
            queues = properties.get("Queues") or []
            queues = [queues] if isinstance(queues, str) else list(queues)
            policy = _policy_json(properties["PolicyDocument"])
            for url in queues:
                queue = _queue_of(url, account_id, region_name)
                if queue is None:
                    raise QueueDoesNotExist()
                queue.policy = policy
            return cls(resource_name, queues, account_id, region_name)

        def delete(self, account_id, region_name):
            for url in self.queues:
                queue = _queue_of(url, self.account_id, self.region_name)
                if queue is not None:
                    queue.policy = None

    # moto's CloudFormation finds its models among CloudFormationModel's subclasses,
    # listed once (lru_cache): list them again, with these two.
    for cached in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cached.cache_clear()


@functools.lru_cache(maxsize=1)
def _aws_managed_policies_data():
    """{name: {Path, DefaultVersionId, Document, CreateDate, UpdateDate}} of the AWS
    managed policies, from the copy moto ships (parsed once; read it, do not change it)."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    return json.loads(aws_managed_policies_data)


def _attachable_policy(backend, arn, region_name):
    """moto's managed policy of that ARN. An AWS managed policy (arn:<partition>:iam::
    aws:policy/<path><name>) that the backend does not hold yet, as moto loads none
    unless told to (settings.load_iam_aws_managed_policies), is made from moto's bundled
    copy with its real document; any other unknown ARN raises IAM's NoSuchEntity, as
    AttachRolePolicy does."""
    from moto.iam.exceptions import NotFoundException
    from moto.iam.models import AWSManagedPolicy
    from moto.utilities.utils import get_partition

    policy = backend.managed_policies.get(arn)
    if policy is not None:
        return policy
    parts = str(arn).split(":", 5)
    if (len(parts) == 6 and parts[0] == "arn" and parts[1] == get_partition(region_name) and parts[2] == "iam"
            and parts[3] == "" and parts[4] == "aws" and parts[5].startswith("policy/")):
        path, _, name = parts[5][len("policy"):].rpartition("/")
        data = _aws_managed_policies_data().get(name)
        if data is not None and data.get("Path", "/") == path + "/":
            policy = AWSManagedPolicy.from_data(name, backend.account_id, region_name, data)
            backend.managed_policies[policy.arn] = policy
            backend.aws_managed_policies.append(policy)
            return policy
    raise NotFoundException(f"Policy {arn} does not exist or is not attachable.")


def _template_managed_policies(cloudformation_json, account_id, region_name):
    """The managed policies of a role's ManagedPolicyArns (resolved by moto's parser),
    each once, in order; raises before anything changes if one does not exist."""
    from moto.iam.models import iam_backends
    from moto.utilities.utils import get_partition

    backend = iam_backends[account_id][get_partition(region_name)]
    arns = (cloudformation_json.get("Properties") or {}).get("ManagedPolicyArns") or []
    arns = [arns] if isinstance(arns, str) else list(arns)
    return backend, [_attachable_policy(backend, arn, region_name) for arn in dict.fromkeys(arns)]


def fix_cloudformation_roles_skip_managed_policy_arns():
    """moto's CloudFormation creates an `AWS::IAM::Role` with its inline `Policies` only
    and ignores `ManagedPolicyArns`, so the role has no attached managed policy: the
    AWS managed ones the SAM transform puts there (AWSLambdaBasicExecutionRole,
    AWSLambdaSQSQueueExecutionRole, …) never reach the IAM enforcement (iam.moto_hook
    reads a role's attached policies), which refuses the watchdog function
    sqs:ReceiveMessage. CloudFormation attaches them: ManagedPolicyArns is "A list of
    Amazon Resource Names (ARNs) of the IAM managed policies that you want to attach to
    the role" (CloudFormation template reference, "AWS::IAM::Role",
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-iam-role.html),
    and a policy that does not exist fails the resource ("Policy … does not exist or is
    not attachable", IAM's NoSuchEntity). Attach every ARN of ManagedPolicyArns when the
    role is created; an AWS managed policy moto's IAM does not hold yet (moto 5 loads
    none by default) is created from moto's bundled copy with its real document, and an
    unknown ARN fails the resource before the role exists (moto creates resources
    within CreateStack, so that call fails). An update attaches the added ARNs and
    detaches the removed ones; deleting the role detaches the ones it attached before
    moto deletes the role (which refuses a role with policies attached)."""
    from moto.iam.models import Role, iam_backends
    from moto.utilities.utils import get_partition

    if getattr(Role.create_from_cloudformation_json, "baton", False):
        return  # applied already
    original_create = Role.create_from_cloudformation_json.__func__
    original_update = Role.update_from_cloudformation_json.__func__
    original_delete = Role.delete_from_cloudformation_json.__func__

    def attach(backend, role, policies, previous=()):
        wanted = [p.arn for p in policies]
        for arn in previous:
            if arn not in wanted and arn in role.managed_policies:
                backend.detach_role_policy(arn, role.name)
        for policy in policies:
            if policy.arn not in role.managed_policies:
                backend.attach_role_policy(policy.arn, role.name)
        role.baton_managed_policy_arns = wanted
        return role

    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        backend, policies = _template_managed_policies(cloudformation_json, account_id, region_name)
        role = original_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        return attach(backend, role, policies)

    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, account_id,
                                        region_name):
        backend, policies = _template_managed_policies(cloudformation_json, account_id, region_name)
        role = original_update(cls, original_resource, new_resource_name, cloudformation_json, account_id,
                               region_name)
        return attach(backend, role, policies, getattr(original_resource, "baton_managed_policy_arns", ()))

    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        backend = iam_backends[account_id][get_partition(region_name)]
        for role in list(backend.roles.values()):
            if role.name == resource_name:
                for arn in getattr(role, "baton_managed_policy_arns", ()):
                    if arn in role.managed_policies:
                        backend.detach_role_policy(arn, role.name)
        return original_delete(cls, resource_name, cloudformation_json, account_id, region_name)

    create_from_cloudformation_json.baton = True
    Role.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)
    Role.update_from_cloudformation_json = classmethod(update_from_cloudformation_json)
    Role.delete_from_cloudformation_json = classmethod(delete_from_cloudformation_json)


# AWS::ECS::TaskDefinition properties → register_task_definition's keyword arguments
# (CloudFormation template reference, "AWS::ECS::TaskDefinition").
_TASK_DEFINITION_PROPERTIES = {
    "NetworkMode": "network_mode", "PlacementConstraints": "placement_constraints",
    "RequiresCompatibilities": "requires_compatibilities", "Cpu": "cpu", "Memory": "memory",
    "TaskRoleArn": "task_role_arn", "ExecutionRoleArn": "execution_role_arn",
    "ProxyConfiguration": "proxy_configuration", "InferenceAccelerators": "inference_accelerators",
    "RuntimePlatform": "runtime_platform", "IpcMode": "ipc_mode", "PidMode": "pid_mode",
    "EphemeralStorage": "ephemeral_storage",
}


def fix_cloudformation_task_definitions_drop_their_roles():
    """moto's CloudFormation registers an AWS::ECS::TaskDefinition with its family,
    containers, volumes and memory only: TaskRoleArn, ExecutionRoleArn, Cpu,
    NetworkMode, RequiresCompatibilities, RuntimePlatform, EphemeralStorage and Tags are
    dropped. AWS registers every property (CloudFormation template reference,
    "AWS::ECS::TaskDefinition",
    https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ecs-taskdefinition.html).
    Without the task role a task gets no credentials (ECS guide, "Amazon ECS task IAM
    role"), and RunTask's iam:PassRole check has no role to check. Register them all,
    in the API's camelCase shapes."""
    from moto.ecs.models import TaskDefinition, ecs_backends
    from moto.core.utils import pascal_to_camelcase, remap_nested_keys
    from moto.moto_api._internal import mock_random

    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = cloudformation_json["Properties"]
        family = properties.get("Family", f"task-definition-{int(mock_random.random() * 10**6)}")
        arguments = {
            argument: remap_nested_keys(properties[name], pascal_to_camelcase)
            if isinstance(properties[name], (dict, list)) else properties[name]
            for name, argument in _TASK_DEFINITION_PROPERTIES.items() if name in properties
        }
        if "Tags" in properties:
            arguments["tags"] = [{"key": t["Key"], "value": t["Value"]} for t in properties["Tags"]]
        for size in ("cpu", "memory"):
            if size in arguments:
                arguments[size] = str(arguments[size])
        return ecs_backends[account_id][region_name].register_task_definition(
            family=family,
            container_definitions=remap_nested_keys(properties.get("ContainerDefinitions", []), pascal_to_camelcase),
            volumes=remap_nested_keys(properties.get("Volumes", []), pascal_to_camelcase),
            **arguments,
        )

    TaskDefinition.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)


def fix_cloudformation_change_sets_leave_no_outputs():
    """A stack created or updated by executing a change set (what `sam deploy` does)
    has the template's `Outputs`, resolved against its resources, and DescribeStacks
    answers them (CloudFormation API reference, ExecuteChangeSet and DescribeStacks
    `Outputs`; the user guide, "Outputs"). moto applies the change set's resources
    but keeps the outputs of the template the stack had before (none, for a stack the
    change set creates), so `make deploy` would print no outputs here. Rebuild the
    outputs from the change set's template when it is applied."""
    from moto.cloudformation.models import ChangeSet

    original = ChangeSet.apply

    def apply(self):
        original(self)
        stack = self.stack
        stack.template = self.template
        stack.template_dict = self.template_dict
        stack.output_map = stack._create_output_map()

    ChangeSet.apply = apply
