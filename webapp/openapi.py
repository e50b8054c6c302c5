"""The OpenAPI 3.1 document of ``/api/v1`` (a test checks it lists exactly the API's routes)."""

from __future__ import annotations

from typing import Any

API_VERSION = "1.0.0"
STRING = {"type": "string"}
NUMBER = {"type": "number"}
INTEGER = {"type": "integer"}
BOOLEAN = {"type": "boolean"}
FILE = {"type": "string", "format": "binary"}
ERROR_TEXT = {
    400: "Missing field or malformed parameter", 401: "Missing, invalid or disabled API key",
    403: "The key's role may not do this", 404: "Unknown customer or reference",
    409: "Conflict (exists, duplicate image, no references, other model version)",
    413: "Request or image too large", 415: "Wrong content type or undecodable image",
    422: "Invalid customer ID or unusable image (too small, no ink); enrollment rejected",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or list(properties)}


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


SCHEMAS: dict[str, Any] = {
    "Error": _object({"error": STRING, "message": STRING, "warnings": _array(_ref("Warning"))},
                     ["error", "message"]),
    "Warning": _object({"code": STRING, "message": STRING, "image": INTEGER}, ["code", "message", "image"]),
    "Customer": _object({"customer_id": STRING, "display_name": _nullable(STRING), "status": STRING,
                         "threshold": _nullable(NUMBER), "reference_count": INTEGER, "created_at": STRING}),
    "CustomerList": _object({"customers": _array(_ref("Customer")), "total": INTEGER, "limit": INTEGER,
                             "offset": INTEGER}),
    "Reference": _object({"id": INTEGER, "sha256": STRING, "model_version": STRING, "created_at": STRING}),
    "CustomerDetail": _object({"customer_id": STRING, "display_name": _nullable(STRING), "status": STRING,
                               "threshold": _nullable(NUMBER), "created_at": STRING,
                               "references": _array(_ref("Reference")), "verifications": INTEGER}),
    "ReferenceList": _object({"customer_id": STRING, "references": _array(_ref("Reference"))}),
    "Enrollment": _object({"customer_id": STRING, "created": BOOLEAN, "reference_ids": _array(INTEGER),
                           "model_version": STRING, "warnings": _array(_ref("Warning"))}),
    "ReferenceScore": _object({"reference_id": INTEGER, "score": NUMBER}),
    "Verification": _object({"customer_id": STRING, "score": NUMBER, "match": BOOLEAN, "threshold": NUMBER,
                             "reference_scores": _array(_ref("ReferenceScore")),
                             "best_reference_id": INTEGER, "model_version": STRING,
                             "verification_id": INTEGER}),
    "Comparison": _object({"score": NUMBER, "match": BOOLEAN, "threshold": NUMBER, "model_version": STRING}),
    "Candidate": _object({"customer_id": STRING, "score": NUMBER, "match": BOOLEAN,
                          "best_reference_id": INTEGER, "reference_scores": _array(_ref("ReferenceScore"))}),
    "Identification": _object({"candidates": _array(_ref("Candidate")), "model_version": STRING}),
    "Health": _object({"status": {"type": "string", "enum": ["ok", "stale"]}, "model_runtime": STRING,
                       "model_version": STRING,
                       "index_size": INTEGER, "sql_references": INTEGER,
                       "other_model_references": INTEGER, "consistent": BOOLEAN,
                       "stale_reason": _nullable({"type": "string",
                                                  "enum": ["index_out_of_step", "index_file_not_written",
                                                           "references_need_reindex"]}),
                       "unsaved_changes": INTEGER}),
    "Deleted": {"type": "object"},
}

CUSTOMER_ID = {"name": "customer_id", "in": "path", "required": True,
               "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"}}
REFERENCE_ID = {"name": "reference_id", "in": "path", "required": True, "schema": INTEGER}


def _operation(summary: str, role: str, ok: tuple[int, str], errors: tuple[int, ...],
               parameters: list[dict[str, Any]] | None = None, body: dict[str, Any] | None = None,
               public: bool = False) -> dict[str, Any]:
    status, schema = ok
    responses: dict[str, Any] = {str(status): {"description": "OK", "content": {
        "application/json": {"schema": _ref(schema)}}}}
    for code in errors + (() if public else (401, 403)):
        responses[str(code)] = {"description": ERROR_TEXT[code],
                                "content": {"application/json": {"schema": _ref("Error")}}}
    operation: dict[str, Any] = {"summary": summary, "description": f"Role: {role}.", "responses": responses}
    if parameters:
        operation["parameters"] = parameters
    if body:
        operation["requestBody"] = {"required": True, "content": body}
    if public:
        operation["security"] = []
    return operation


def _multipart(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"multipart/form-data": {"schema": _object(properties, required)}}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


VIEW, OPERATE, ADMIN = "admin, operator or auditor", "admin or operator", "admin"
IMAGE_ERRORS = (400, 413, 415, 422)
PATHS: dict[str, Any] = {
    "/api/v1/openapi.json": {"get": {"summary": "This document (no key needed)", "security": [],
                                     "responses": {"200": {"description": "OpenAPI document"}}}},
    "/api/v1/health": {"get": _operation("Model version, index size, SQL references, agreement", VIEW,
                                         (200, "Health"), ())},
    "/api/v1/customers": {
        "get": _operation("List customers", VIEW, (200, "CustomerList"), (400,), [
            _query("search", STRING), _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
            _query("offset", {"type": "integer", "minimum": 0})]),
        "post": _operation("Create a customer without references", OPERATE, (201, "Customer"),
                           (400, 409, 415, 422), body={"application/json": {"schema": _object(
                               {"customer_id": STRING, "display_name": STRING}, ["customer_id"])}}),
    },
    "/api/v1/customers/{customer_id}": {
        "get": _operation("A customer with references", VIEW, (200, "CustomerDetail"), (404, 422),
                          [CUSTOMER_ID]),
        "delete": _operation("Delete a customer, references and index entries (audit stays)", ADMIN,
                             (200, "Deleted"), (404, 422), [CUSTOMER_ID]),
    },
    "/api/v1/customers/{customer_id}/references": {
        "get": _operation("The customer's references", VIEW, (200, "ReferenceList"), (404, 422),
                          [CUSTOMER_ID]),
        "post": _operation("Enroll one or more images (all or none; creates the customer when new; "
                           "force needs admin)", OPERATE, (201, "Enrollment"), (*IMAGE_ERRORS, 409),
                           [CUSTOMER_ID], _multipart({"images": _array(FILE), "display_name": STRING,
                                                      "force": BOOLEAN}, ["images"])),
    },
    "/api/v1/customers/{customer_id}/references/{reference_id}": {
        "delete": _operation("Delete one reference", ADMIN, (200, "Deleted"), (404, 422),
                             [CUSTOMER_ID, REFERENCE_ID]),
    },
    "/api/v1/verify": {"post": _operation(
        "Verify an image against a customer's references (audited)", OPERATE, (200, "Verification"),
        (*IMAGE_ERRORS, 404, 409), body=_multipart({"customer_id": STRING, "image": FILE},
                                                   ["customer_id", "image"]))},
    "/api/v1/compare": {"post": _operation(
        "Score two images against each other (nothing stored)", OPERATE, (200, "Comparison"), IMAGE_ERRORS,
        body=_multipart({"image_a": FILE, "image_b": FILE}, ["image_a", "image_b"]))},
    "/api/v1/identify": {"post": _operation(
        "The enrolled customers that best match an image", OPERATE, (200, "Identification"),
        (*IMAGE_ERRORS, 409), body=_multipart({"image": FILE, "top": {"type": "integer", "minimum": 1,
                                                                      "maximum": 50}}, ["image"]))},
}


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document as JSON-ready data."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "sigverify API", "version": API_VERSION,
                 "description": "Offline handwritten signature verification. Send an API key in the "
                                "X-API-Key header; errors are {\"error\": code, \"message\": text}."},
        "servers": [{"url": "/"}],
        "security": [{"ApiKey": []}],
        "paths": PATHS,
        "components": {"schemas": SCHEMAS, "securitySchemes": {
            "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}}},
    }
