#!/usr/bin/env bash
# LocalStack init hook: the same send queue, DLQ (redrive after 5 receives) and KMS key
# as infra/bootstrap.py creates for the no-Docker stack.
set -euo pipefail
stage="${STAGE:-local}"
dlq_url=$(awslocal sqs create-queue --queue-name "wa-send-dlq-$stage" --query QueueUrl --output text)
dlq_arn=$(awslocal sqs get-queue-attributes --queue-url "$dlq_url" --attribute-names QueueArn --query Attributes.QueueArn --output text)
queue_url=$(awslocal sqs create-queue --queue-name "wa-send-$stage" --query QueueUrl --output text)
awslocal sqs set-queue-attributes --queue-url "$queue_url" --attributes "{\"VisibilityTimeout\":\"30\",\"RedrivePolicy\":\"{\\\"deadLetterTargetArn\\\":\\\"$dlq_arn\\\",\\\"maxReceiveCount\\\":\\\"5\\\"}\"}"
if ! awslocal kms list-aliases --query "Aliases[?AliasName=='alias/wa-tenant-tokens-$stage'].TargetKeyId" --output text | grep -q .; then
  key_id=$(awslocal kms create-key --description "WhatsApp tenant tokens ($stage)" --query KeyMetadata.KeyId --output text)
  awslocal kms create-alias --alias-name "alias/wa-tenant-tokens-$stage" --target-key-id "$key_id"
fi
echo "SEND_QUEUE_URL=$queue_url"
echo "SEND_DLQ_URL=$dlq_url"
echo "KMS_KEY_ID=alias/wa-tenant-tokens-$stage"
