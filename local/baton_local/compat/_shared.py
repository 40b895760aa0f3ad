"""What the compat modules share: their logger and compact JSON."""

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
