"""Creates the send queue and its DLQ (redrive after 5 receives), the events queue and its
DLQ (after 10), the token KMS key and the media bucket, if missing, and prints
`export NAME=value` lines for them. Idempotent.

Uses the standard AWS environment (AWS_ENDPOINT_URL for the local moto server).
"""

import argparse
import json
import os
import shlex

import boto3

MAX_RECEIVE_COUNT = 5


def export(name, value):
    print(f"export {name}={shlex.quote(value)}")


def queues(sqs, stage, name="send", max_receives=MAX_RECEIVE_COUNT):
    dlq_url = sqs.create_queue(
        QueueName=f"wa-{name}-dlq-{stage}",
        Attributes={"MessageRetentionPeriod": "1209600"},
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    url = sqs.create_queue(QueueName=f"wa-{name}-{stage}")["QueueUrl"]
    sqs.set_queue_attributes(
        QueueUrl=url,
        Attributes={
            "VisibilityTimeout": os.environ.get("SEND_VISIBILITY_TIMEOUT", "30"),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)}
            ),
        },
    )
    return url, dlq_url


def key(kms, stage):
    alias = f"alias/wa-tenant-tokens-{stage}"
    for page in kms.get_paginator("list_aliases").paginate():
        for a in page["Aliases"]:
            if a["AliasName"] == alias and a.get("TargetKeyId"):
                return a["TargetKeyId"]
    key_id = kms.create_key(Description=f"WhatsApp tenant tokens ({stage})")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    return key_id


def bucket(s3, stage):
    name = f"wa-media-{stage}"
    try:
        s3.create_bucket(Bucket=name)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    return name


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--stage", default="local")
    a = p.parse_args()
    session = boto3.session.Session(region_name=os.environ.get("AWS_REGION", "us-east-1"))
    if not os.environ.get("SEND_QUEUE_URL"):
        url, dlq = queues(session.client("sqs"), a.stage)
        export("SEND_QUEUE_URL", url)
        export("SEND_DLQ_URL", dlq)
    if not os.environ.get("EVENTS_QUEUE_URL"):
        url, dlq = queues(session.client("sqs"), a.stage, "events", 10)
        export("EVENTS_QUEUE_URL", url)
        export("EVENTS_DLQ_URL", dlq)
    if not os.environ.get("KMS_KEY_ID"):
        export("KMS_KEY_ID", key(session.client("kms"), a.stage))
    if not os.environ.get("MEDIA_BUCKET"):
        export("MEDIA_BUCKET", bucket(session.client("s3"), a.stage))


if __name__ == "__main__":
    main()
