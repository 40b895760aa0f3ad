"""What the compat modules share: their logger, compact JSON, botocore's Step Functions
model and its operation names in snake case."""

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
