"""Expands the SAM template offline (no AWS account, no network) into plain CloudFormation,
so cfn-lint can check what SAM would deploy, not only what we wrote.

Usage: python infra/sam_transform.py infra/template.yaml OUT.json
"""

import json
import os
import sys

from cfnlint.decode import decode_str
from samtranslator.public.translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform


class OfflinePolicies(ManagedPolicyLoader):
    """The translator asks IAM for managed policy ARNs only for policies named by short name;
    the template names none, so an empty map answers without a network call."""

    def __init__(self):
        pass

    def load(self):
        return {}


def main(src, dst):
    # The translator asks boto for the region of its pseudo parameters; no call is made.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with open(src, encoding="utf-8") as f:
        template, errors = decode_str(f.read())
    if errors:
        for e in errors:
            print(e, file=sys.stderr)
        return 1
    # `sam package` replaces local code paths by the S3 objects it uploads; do the same with
    # placeholders, as the translator accepts only S3 code locations.
    for name, res in template.get("Resources", {}).items():
        props = res.get("Properties", {})
        if res.get("Type") == "AWS::Serverless::Function" and not str(
            props.get("CodeUri", "")
        ).startswith("s3://"):
            props["CodeUri"] = f"s3://reclaim-artifacts/{name}.zip"
        if res.get("Type") == "AWS::Serverless::LayerVersion" and not str(
            props.get("ContentUri", "")
        ).startswith("s3://"):
            props["ContentUri"] = f"s3://reclaim-artifacts/{name}.zip"
    out = transform(
        template,
        {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"},
        OfflinePolicies(),
    )
    with open(dst, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, default=str)
    print(f"{src}: {len(out.get('Resources', {}))} resources after the SAM transform")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
