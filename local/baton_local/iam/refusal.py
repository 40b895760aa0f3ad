"""How each service refuses a request, and which S3 operation a REST request is.

The access-denied answers, per protocol:
- JSON services (ECS, Step Functions, EventBridge, CloudWatch Logs, KMS): HTTP 400,
  `{"__type": "AccessDeniedException", "message": "User: <arn> is not authorized to
  perform: <action> on resource: <resource> because no identity-based policy allows
  the <action> action"}` (each service's API reference, "Common Errors":
  AccessDeniedException, HTTP 400; the message as the IAM user guide's "Troubleshoot
  access denied error messages" gives it).
- Lambda (REST-JSON): HTTP 403 with `X-Amzn-Errortype: AccessDeniedException`.
- S3 (REST-XML): HTTP 403 `<Code>AccessDenied</Code>` (S3 user guide, "Troubleshoot
  access denied (403 Forbidden) errors", whose messages for same-account requests
  have the form above).
- SQS: `AccessDenied` (SQS knowledge-center article on AccessDenied errors): in the
  JSON protocol with the `x-amzn-query-error: AccessDenied;Sender` header that
  AWS-query-compatible services send, so that SDKs report the query error code; in
  the query protocol as an XML ErrorResponse.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .evaluate import Decision


def _json_error(status: int, body: Mapping[str, Any]):
    from werkzeug.exceptions import HTTPException

    error = HTTPException(description=json.dumps(body))
    error.code = status
    return error


def refuse(response, service: str, caller: str, action: str, decision: Decision) -> None:
    """Raise the service's access-denied error from inside moto's request handling
    (moto's call_action turns an HTTPException into the response; S3 serialises its
    own S3ClientError)."""
    message = decision.message(caller, action)
    if service == "s3":
        from moto.s3.exceptions import S3ClientError

        raise S3ClientError("AccessDenied", message)
    content_type = response.headers.get("Content-Type") or "application/x-amz-json-1.1"
    if service == "sqs":
        if "json" in content_type:
            response.response_headers["Content-Type"] = content_type
            response.response_headers["x-amzn-query-error"] = "AccessDenied;Sender"
            raise _json_error(403, {"__type": "com.amazon.coral.service#AccessDeniedException", "message": message})
        from werkzeug.exceptions import HTTPException

        response.response_headers["Content-Type"] = "text/xml"
        error = HTTPException(description=(
            "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
            f"<Message>{_xml(message)}</Message><Detail/></Error><RequestId/></ErrorResponse>"))
        error.code = 403
        raise error
    if service == "lambda":
        response.response_headers["Content-Type"] = "application/json"
        response.response_headers["X-Amzn-Errortype"] = "AccessDeniedException"
        raise _json_error(403, {"Type": "User", "Message": message})
    response.response_headers["Content-Type"] = content_type
    raise _json_error(400, {"__type": "AccessDeniedException", "message": message})


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_KEY_SUBRESOURCES = {"acl": "ObjectAcl", "tagging": "ObjectTagging", "retention": "ObjectRetention",
                     "legal-hold": "ObjectLegalHold", "attributes": "ObjectAttributes"}


# Query parameters of the bucket listings that are not subresources (S3 API reference,
# ListObjectsV2, ListObjects, ListObjectVersions, ListMultipartUploads: request syntax),
# and the SDKs' own `x-id` (the operation's name, which S3 ignores).
_LIST_PARAMETERS = frozenset({"list-type", "encoding-type", "continuation-token", "start-after", "fetch-owner",
                              "marker", "key-marker", "version-id-marker", "upload-id-marker", "max-uploads",
                              "optional-object-attributes", "x-id"})


def s3_operation(method: str, resource: str, query: Mapping[str, list], headers: Mapping[str, str]
                 ) -> tuple[str, dict[str, Any]]:
    """(operation, parameters) of an S3 REST request, from its method, the bucket/key
    ARN moto authorises (arn:aws:s3:::bucket[/key]) and its query string (S3 API
    reference: each operation's request syntax)."""
    path = resource.split(":::", 1)[1] if ":::" in resource else ""
    bucket, _, key = path.partition("/")
    params: dict[str, Any] = {"Bucket": bucket} if bucket and bucket != "*" else {}
    if key:
        params["Key"] = key
    names = {"versionId": "VersionId", "uploadId": "UploadId", "partNumber": "PartNumber", "prefix": "Prefix",
             "delimiter": "Delimiter", "max-keys": "MaxKeys"}
    params.update({name: query[q][0] for q, name in names.items() if q in query})
    if not params.get("Bucket"):
        return "ListBuckets", params
    copy = "x-amz-copy-source" in {str(h).lower() for h in dict(headers)}
    if key:
        sub = next((s for s in _KEY_SUBRESOURCES if s in query), None)
        if method == "HEAD":
            return "HeadObject", params
        if method == "GET":
            return ("ListParts" if "uploadId" in query else f"Get{_KEY_SUBRESOURCES[sub]}" if sub
                    else "GetObject"), params
        if method == "PUT":
            if "uploadId" in query:
                return ("UploadPartCopy" if copy else "UploadPart"), params
            return (f"Put{_KEY_SUBRESOURCES[sub]}" if sub else "CopyObject" if copy else "PutObject"), params
        if method == "DELETE":
            return ("AbortMultipartUpload" if "uploadId" in query else "DeleteObject"), params
        if method == "POST":
            if "uploads" in query:
                return "CreateMultipartUpload", params
            return ("CompleteMultipartUpload" if "uploadId" in query else "RestoreObject" if "restore" in query
                    else "SelectObjectContent"), params
    sub = sorted(q for q in query if q not in names and q not in _LIST_PARAMETERS)
    if method == "GET" and not sub:
        return ("ListObjectsV2" if query.get("list-type") == ["2"] else "ListObjects"), params
    if method == "GET" and sub == ["uploads"]:
        return "ListMultipartUploads", params
    if method == "GET" and sub == ["versions"]:
        return "ListObjectVersions", params
    if method == "HEAD":
        return "HeadBucket", params
    if method == "POST" and "delete" in query:
        return "DeleteObjects", params
    verb = {"GET": "Get", "PUT": "Put", "DELETE": "Delete"}.get(method, method.title())
    return f"{verb}Bucket{''.join(s.title() for s in sub)}", params
