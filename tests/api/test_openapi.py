"""The OpenAPI document is complete (issue 6): every operation of the running app says what it does, who may
call it, what it answers on success and on each error (one shared error body), with examples that fit their
schemas. A route added without these fails here; /docs and /openapi.json are served.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
from fastapi import FastAPI

from helpgate.api.openapi import PUBLIC, errors
from helpgate.gateway import Gateway
from tests.api.test_routes_by_role import ROUTES, running_app
from tests.conftest import make_settings

Spec = dict[str, Any]
ERROR_SCHEMA = {"$ref": "#/components/schemas/ErrorOut"}
NOWHERE = "http://127.0.0.1:9"  # no Inngest server: nothing is sent while the test runs
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def operations(spec: Spec) -> list[tuple[str, str, Spec]]:
    return [
        (method.upper(), path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def component(spec: Spec, schema: Spec) -> Spec:
    """The component a `$ref` names (or the schema itself); for an array, its items'."""
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        schema = schema["items"]
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        found: Spec = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
        return found
    return schema


def has_example(spec: Spec, media: Spec) -> bool:
    """An example on the media type, or on the schema (or its items) it refers to."""
    if "example" in media or media.get("examples"):
        return True
    schema = media.get("schema", {})
    return bool(schema.get("examples") or component(spec, schema).get("examples"))


def content_problems(spec: Spec, what: str, content: Spec) -> list[str]:
    problems = []
    if not content:
        problems.append(f"{what} has no content")
    for media_type, media in content.items():
        if not media.get("schema"):
            problems.append(f"{what} ({media_type}) has no schema")
        if not has_example(spec, media):
            problems.append(f"{what} ({media_type}) has no example")
    return problems


def success_problems(spec: Spec, responses: Spec) -> list[str]:
    successes = {status: response for status, response in responses.items() if status.startswith("2")}
    if not successes:
        return ["no success response"]
    problems = []
    for status, response in successes.items():
        if status == "204":
            if response.get("content"):
                problems.append("204 has content")
            continue
        problems += content_problems(spec, status, response.get("content", {}))
    return problems


def error_problems(spec: Spec, responses: Spec) -> list[str]:
    problems = []
    for status, response in responses.items():
        if not status.startswith(("4", "5")):
            continue
        if not response.get("description"):
            problems.append(f"{status} has no description")
        media = response.get("content", {}).get("application/json", {})
        if status.startswith("4") and media.get("schema") != ERROR_SCHEMA:
            problems.append(f"{status} does not answer the shared ErrorOut body")
        if not media.get("schema") or not has_example(spec, media):
            problems.append(f"{status} has no JSON schema and example")
    return problems


def expected_errors(operation: Spec) -> set[str]:
    """The error statuses an operation must document because of its security, parameters and body; the
    role table (test_routes_by_role.ROUTES) adds the statuses each role gets, such as 403."""
    expected = set()
    parameters = operation.get("parameters", [])
    if operation.get("security"):
        expected.add("401")
    if any(parameter["in"] == "path" for parameter in parameters):
        expected.add("404")
    if parameters or "requestBody" in operation:
        expected.add("422")
    if "application/json" in operation.get("requestBody", {}).get("content", {}):
        expected.add("400")  # FastAPI: "There was an error parsing the body"
    return expected


def operation_problems(spec: Spec, method: str, path: str, operation: Spec) -> list[str]:
    problems = []
    if not operation.get("summary") or not operation.get("description"):
        problems.append("no summary or no description (the route's docstring)")
    security = operation.get("security")
    if security is None:
        problems.append('auth not stated: a security requirement, or `openapi_extra=PUBLIC` ("security": [])')
    schemes = spec.get("components", {}).get("securitySchemes", {})
    problems += [
        f"unknown security scheme {name}"
        for requirement in security or []
        for name in requirement
        if name not in schemes
    ]
    responses: Spec = operation.get("responses", {})
    problems += success_problems(spec, responses)
    problems += error_problems(spec, responses)
    row = ROUTES.get((method, path))
    tabled = {str(status) for status in row.expected if status >= 400} if row else set()
    missing = sorted((expected_errors(operation) | tabled) - responses.keys())
    if missing:
        problems.append(f"undocumented error statuses {missing}")
    if "422" in responses and "422" not in expected_errors(operation):
        problems.append("422 documented, but there is nothing to validate")
    if "requestBody" in operation:
        problems += content_problems(spec, "request body", operation["requestBody"].get("content", {}))
    for parameter in operation.get("parameters", []):
        if not parameter.get("schema"):
            problems.append(f"parameter {parameter['name']} has no schema")
    return [f"{method} {path}: {problem}" for problem in problems]


def example_problems(spec: Spec) -> list[str]:
    """Every example in the document fits the schema it illustrates."""
    problems: list[str] = []
    root = {"components": spec.get("components", {})}

    def check(where: str, schema: Spec, example: object) -> None:
        validator = jsonschema_rs.Draft202012Validator({**root, **schema})
        problems.extend(f"{where}: example {error.message}" for error in validator.iter_errors(example))

    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        for example in schema.get("examples", []):
            check(f"schema {name}", schema, example)
    for method, path, operation in operations(spec):
        bodies = [("request body", operation.get("requestBody", {}))]
        bodies += [(status, response) for status, response in operation.get("responses", {}).items()]
        for what, body in bodies:
            for media_type, media in body.get("content", {}).items():
                if "example" in media and media.get("schema"):
                    check(f"{method} {path} {what} ({media_type})", media["schema"], media["example"])
    return problems


def document_problems(spec: Spec) -> list[str]:
    problems: list[str] = []
    for method, path, operation in operations(spec):
        problems += operation_problems(spec, method, path, operation)
    return problems + example_problems(spec)


async def test_every_operation_is_documented(gateway: Gateway) -> None:
    spec = running_app(gateway).openapi()
    problems = document_problems(spec)
    assert not problems, "incomplete OpenAPI document:\n" + "\n".join(problems)


async def test_docs_and_the_document_are_served(gateway: Gateway, api: httpx.AsyncClient) -> None:
    document = await api.get("/openapi.json")
    assert document.status_code == 200
    assert document.json() == running_app(gateway).openapi()
    docs = await api.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in docs.text


async def test_real_error_bodies_fit_the_shared_schema(gateway: Gateway, api: httpx.AsyncClient) -> None:
    spec = running_app(gateway).openapi()
    validator = jsonschema_rs.Draft202012Validator({"components": spec["components"], **ERROR_SCHEMA})
    answers = [
        await api.get("/api/auth/me"),  # 401 from the error handler
        await api.post("/api/auth/login", json={"email": 1}),  # 422 from FastAPI's validation
        await api.post("/api/auth/token", content=b"x", headers={"content-type": "text/plain"}),  # 422, ours
        await api.get("/api/nothing-here"),  # 404 from the router
    ]
    assert [answer.status_code for answer in answers] == [401, 422, 422, 404]
    for answer in answers:
        assert validator.is_valid(answer.json()), answer.text


def test_an_undocumented_route_is_reported() -> None:
    """The checks can fail: a bare route breaks every rule, a documented one none."""
    app = FastAPI()

    @app.get("/bare/{thing}")
    async def bare(thing: str) -> dict[str, str]:
        return {"thing": thing}

    @app.get("/documented", openapi_extra=PUBLIC, responses=errors(422))
    async def documented(q: int = 0) -> dict[str, int]:
        """Documented."""
        return {"q": q}

    spec = app.openapi()
    spec["paths"]["/documented"]["get"]["responses"]["200"]["content"]["application/json"]["example"] = {"q": 1}
    problems = document_problems(spec)
    bare_problems = " ".join(problem for problem in problems if "/bare/" in problem)
    assert "description" in bare_problems and "auth not stated" in bare_problems
    assert "['404']" in bare_problems and "shared ErrorOut" in bare_problems and "no example" in bare_problems
    assert [problem for problem in problems if "/documented" in problem] == []


async def test_the_inngest_endpoint_is_not_part_of_the_document(tmp_path: Path, store_uri: str) -> None:
    """With Inngest running the workflows, /api/inngest is served (the Inngest protocol, signed) but is not
    an operation of the API: the document stays complete."""
    settings = make_settings(
        tmp_path, store_uri, "test_openapi_inngest", run_workflows=True, inngest_dev="1", inngest_base_url=NOWHERE
    )
    gateway = Gateway(settings)
    await gateway.start()
    try:
        app = running_app(gateway)
        assert any(getattr(route, "path", None) == "/api/inngest" for route in app.routes)
        spec = app.openapi()
        assert "/api/inngest" not in spec["paths"]
        assert document_problems(spec) == []
    finally:
        await gateway.stop()
