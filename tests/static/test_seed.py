"""tools/seed.py's own rules: loopback only, stage order from upstream links, stamped zips.

Seeding a live moto_server is exercised by every Rust integration test (promote/tests/).
"""

from __future__ import annotations

import io
import re
import zipfile

import pytest

import seed  # noqa: E402  (tools/ is on sys.path via conftest)


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:5000", "http://localhost:1234", "http://[::1]:80/"])
def test_loopback_endpoints_are_accepted(endpoint):
    assert seed.check_loopback(endpoint) == endpoint.rstrip("/")


@pytest.mark.parametrize(
    "endpoint",
    ["https://lambda.eu-west-2.amazonaws.com", "http://10.0.0.1:5000", "http://169.254.169.254", "127.0.0.1:5000", ""],
)
def test_anything_but_loopback_is_refused(endpoint):
    with pytest.raises(seed.SeedError):
        seed.check_loopback(endpoint)


def test_main_refuses_a_remote_endpoint_before_any_call(capsys):
    assert seed.main(["--endpoint", "https://lambda.us-east-1.amazonaws.com"]) == 2
    assert "non-loopback" in capsys.readouterr().err


def test_stages_are_ordered_along_upstream_links():
    stages = {"live": {"upstream": "test"}, "dev": {"upstream": None}, "test": {"upstream": "dev"}}
    assert [s for s, _ in seed.order_stages(stages)] == ["dev", "test", "live"]


@pytest.mark.parametrize(
    "stages, message",
    [
        ({"a": {"upstream": None}, "b": {"upstream": None}}, "exactly one"),
        ({"a": {"upstream": None}, "b": {"upstream": "a"}, "c": {"upstream": "a"}}, "linear"),
        ({"a": {"upstream": None}, "b": {"upstream": "c"}, "c": {"upstream": "b"}}, "not reachable"),
        ({"a": {"upstream": None}, "b": {"upstream": "zzz"}}, "zzz"),
    ],
)
def test_broken_stage_chains_are_refused(stages, message):
    with pytest.raises(seed.SeedError, match=message):
        seed.order_stages(stages)


def test_expected_resources_follow_the_repository_environments(environments_dir):
    r = seed.expected_resources(environments_dir)
    assert r["stages"] == ["dev", "test", "live"]
    assert r["aliases"] == r["stages"]
    buckets = {f"{p}Bucket": f"app-live-{p}-123456789012" for p in ("notes", "images", "uploads", "summaries")}
    assert r["api_stages"]["live"] == {"variables": {r["stage_variable"]: "live", "birthdayTable": "birthday-live", **buckets}}
    assert r["tables"] == ["birthday-dev", "birthday-test", "birthday-live"]
    assert all(len(names) == len(set(names)) > 0 for names in r["alarms"].values())
    # A Lambda alarm per function, an API alarm once.
    assert {"app-live-lambda-errors", "app-live-lambda-errors-birthday", "app-live-api-5xx-rate"} <= set(r["alarms"]["live"])
    assert "app-live-api-5xx-rate-birthday" not in r["alarms"]["live"]
    assert r["route_paths"] == ["/", "/build-info", "/hello", "/images", "/notes", "/hello/{username}",
                                "/images/{key+}", "/notes/{name}"]
    assert r["resources"] == r["route_paths"]
    assert r["integrations"] == {"/": "app", "/build-info": "app", "/hello/{username}": "birthday",
                                 "/notes/{name}": "notes", "/images": "images", "/images/{key+}": "images"}
    # file-metadata has no route: S3 events reach it, through each stage's uploads bucket.
    assert r["buckets"] == [f"app-{s}-{p}-123456789012" for s in r["stages"] for p in ("notes", "images", "uploads", "summaries")]


class RecordingApiGateway:
    """The API Gateway calls build_rest_api makes, recorded: resources by path, integrations."""

    def __init__(self):
        self.paths = {"root": "/"}
        self.methods: dict[str, str] = {}
        self.integrations: dict[str, dict] = {}

    def create_rest_api(self, name, endpointConfiguration):
        self.name = name
        return {"id": "api"}

    def get_resources(self, restApiId):
        return {"items": [{"id": "root", "path": "/"}]}

    def create_resource(self, restApiId, parentId, pathPart):
        parent = self.paths[parentId]
        path = parent.rstrip("/") + "/" + pathPart
        assert path not in self.paths.values(), f"{path} created twice"
        self.paths[path] = path
        return {"id": path}

    def put_method(self, restApiId, resourceId, httpMethod, authorizationType):
        self.methods[self.paths[resourceId]] = httpMethod

    def put_integration(self, restApiId, resourceId, httpMethod, type, integrationHttpMethod, uri):
        self.integrations[self.paths[resourceId]] = {"type": type, "method": httpMethod, "uri": uri}


def test_the_rest_api_routes_every_functions_routes_to_its_alias_by_the_stage_variable(environments_dir):
    project, _ = seed.load_environments(environments_dir)
    apigw = RecordingApiGateway()
    assert seed.build_rest_api(apigw, project, "eu-west-2") == "api"
    assert apigw.name == project["rest_api_name"]
    expected = seed.expected_resources(environments_dir)
    assert sorted(apigw.paths.values()) == sorted(expected["resources"])
    # Every route, and only routes (not their bare parents), has ANY and a proxy integration
    # to its own function's alias named by the stage variable.
    assert set(apigw.methods) == set(apigw.integrations) == set(expected["integrations"])
    for route, function in expected["integrations"].items():
        i = apigw.integrations[route]
        assert (i["type"], i["method"], apigw.methods[route]) == ("AWS_PROXY", "ANY", "ANY")
        assert i["uri"] == (
            "arn:aws:apigateway:eu-west-2:lambda:path/2015-03-31/functions/arn:aws:lambda:eu-west-2:"
            f"{seed.ACCOUNT_ID}:function:{function}:${{stageVariables.lambdaAlias}}/invocations"
        ), route


def test_fake_zip_carries_exactly_one_contract_build_stamp():
    sha = seed.fake_sha("0.1.2")
    assert re.fullmatch(r"[0-9a-f]{40}", sha)
    with zipfile.ZipFile(io.BytesIO(seed.fake_zip("app", "0.1.2", sha))) as z:
        assert z.namelist() == ["bootstrap"]
        body = z.read("bootstrap")
    stamps = re.findall(rb"@@build-stamp@@([^@]*)@@end@@", body)
    assert stamps == [f"app 0.1.2 {sha}".encode()]
    # Same inputs, same bytes: publishing the fixture's zip again must find the same code.
    assert seed.fake_zip("app", "0.1.2", sha) == seed.fake_zip("app", "0.1.2", sha)
