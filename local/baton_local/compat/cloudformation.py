"""CloudFormation: the SAM transform, and state machines defined in S3 with
substitutions, created where executions run."""

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
