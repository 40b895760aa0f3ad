"""What the compat modules share: their logger, compact JSON, botocore's Step Functions
model and its operation names in snake case, and a stricter definition check."""

import functools
import json
import logging

LOG = logging.getLogger("baton.compat")


def _json_or_text(text):
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def dumps(value, **kwargs):
    return json.dumps(value, separators=(",", ":"), **kwargs)


@functools.lru_cache(maxsize=1)
def _sfn_model():
    import botocore.session

    return botocore.session.get_session().get_service_model("stepfunctions")


def _snake(name):
    from moto.stepfunctions.parser.utils import camel_to_snake_case

    return camel_to_snake_case(name)


def refuse_definitions(problems_of):
    """Make CreateStateMachine and UpdateStateMachine refuse a definition for which
    `problems_of(parsed definition)` lists problems, with InvalidDefinition naming them
    (as AWS refuses a definition it does not take: API reference, CreateStateMachine),
    after moto's own check. Needs fix_sfn_parser_errors_have_no_code for the code."""
    from moto.stepfunctions.parser.api import InvalidDefinition
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = StepFunctionsParserBackend._validate_definition

    def validate_definition(definition):
        original(definition)
        try:
            parsed = json.loads(definition)
        except (TypeError, ValueError):
            return  # moto's own check has answered for definitions it cannot read
        problems = problems_of(parsed)
        if problems:
            raise InvalidDefinition(message="Invalid State Machine Definition: " + ", ".join(problems))

    StepFunctionsParserBackend._validate_definition = staticmethod(validate_definition)
