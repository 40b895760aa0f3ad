"""CloudFormation YAML with short-form tags (`!Ref`, `!GetAtt`, `!Sub`, …) read as the
long form ({"Ref": …}, {"Fn::GetAtt": …}), for tools that read template.yaml."""

import yaml


class CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _tag)


def load(text: str) -> dict:
    return yaml.load(text, Loader=CfnLoader)
