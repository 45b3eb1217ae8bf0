"""`scaleout export k8s`: every object validated against the Kubernetes API schema (the `kubernetes`
client's models, strictly: an unknown or mistyped field fails), plus the references between objects."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import kubernetes.client as kc
import pytest
import yaml
from kubernetes.client import ApiClient

from scaleout.config.load import parse_config
from scaleout.errors import UsageError
from scaleout.render.k8s import read_static_files, render_k8s
from scaleout.render.nginx import render_nginx

MODELS = {
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Service"): "V1Service",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("apps/v1", "StatefulSet"): "V1StatefulSet",
    ("v1", "Secret"): "V1Secret",
    ("networking.k8s.io/v1", "Ingress"): "V1Ingress",
}
_PRIMITIVES = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "bytes": (str,),
               "object": (str, int, dict, list, bool)}
_CONTAINER = re.compile(r"^(list|List)\[(.*)\]$|^(dict\(|Dict\[)str, (.*)[)\]]$")


def _check(value, type_name: str, path: str) -> None:
    """Walk `value` against the OpenAPI types of the client models; unknown keys and wrong types fail.
    (Type names are `list[X]`/`dict(str, X)` in older clients and `List[X]`/`Dict[str, X]` in newer ones.)"""
    m = _CONTAINER.match(type_name)
    if m and m.group(2) is not None:
        assert isinstance(value, list), f"{path}: expected a list"
        for i, item in enumerate(value):
            _check(item, m.group(2), f"{path}[{i}]")
    elif m:
        assert isinstance(value, dict), f"{path}: expected a mapping"
        for k, v in value.items():
            assert isinstance(k, str), f"{path}: key {k!r} is not a string"
            _check(v, m.group(4), f"{path}.{k}")
    elif type_name in _PRIMITIVES:
        ok = isinstance(value, _PRIMITIVES[type_name]) and not (type_name == "int" and isinstance(value, bool))
        assert ok, f"{path}: {value!r} is not {type_name}"
    else:
        model = getattr(kc, type_name)
        assert isinstance(value, dict), f"{path}: expected an object ({type_name})"
        by_json = {json: attr for attr, json in model.attribute_map.items()}
        for key, v in value.items():
            assert key in by_json, f"{path}: unknown field {key!r} for {type_name}"
            _check(v, model.openapi_types[by_json[key]], f"{path}.{key}")


def load_object(doc: dict):
    """Validate one manifest and build its model: the models check required fields themselves
    (kubernetes >= 37 models are pydantic models that also forbid unknown fields)."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    assert key in MODELS, f"unexpected object {key}"
    _check(doc, MODELS[key], f"{doc['kind']}/{doc['metadata']['name']}")
    model = getattr(kc, MODELS[key])
    if hasattr(model, "model_validate"):
        return model.model_validate(doc)
    client = ApiClient()
    obj = client._ApiClient__deserialize(doc, MODELS[key])
    assert client.sanitize_for_serialization(obj) == doc  # nothing dropped, nothing coerced
    return obj


def objects(files: dict[str, str]) -> list[dict]:
    docs = []
    for text in files.values():
        docs += [d for d in yaml.safe_load_all(text) if d is not None]
    for d in docs:
        load_object(d)
    return docs


def by_kind(docs, kind):
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


CONFIG = """
name: shop
backend:
  port: 9000
  replicas: 4
  health: {path: /up, interval: 3, timeout: 2, retries: 4, start_period: 7}
  env: {GREETING: hello}
balancer: {port: 18080}
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "public" / "static").mkdir(parents=True)
    (tmp_path / "public" / "offline.html").write_text('<html><link href="/static/app.css"></html>')
    (tmp_path / "public" / "static" / "app.css").write_text("body{}")
    (tmp_path / "public" / "static" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    return tmp_path


def render(project: Path, text: str = CONFIG, **kw) -> dict[str, str]:
    c = parse_config(text, project, env={})
    return render_k8s(c, read_static_files(c), "// worker", **kw)


def test_validator_rejects_what_the_api_would():
    good = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"ports": [{"port": 80}]}}
    load_object(good)
    with pytest.raises(AssertionError, match="unknown field 'prots'"):
        load_object({**good, "spec": {"prots": [{"port": 80}]}})
    with pytest.raises(AssertionError, match="is not int"):
        load_object({**good, "spec": {"ports": [{"port": "80"}]}})
    # a required field, checked by the model (pydantic's error is a ValueError)
    with pytest.raises(ValueError, match="containers"):
        load_object(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "x"},
                "spec": {"selector": {}, "template": {"spec": {}}},
            }
        )


def test_nginx_variant_validates_and_has_every_part(project):
    files = render(project)
    assert sorted(files) == ["backend.yaml", "balancer.yaml"]
    docs = objects(files)
    deployments, services, maps = by_kind(docs, "Deployment"), by_kind(docs, "Service"), by_kind(docs, "ConfigMap")
    assert sorted(deployments) == ["shop-backend", "shop-lb"]
    assert sorted(services) == ["shop-backend", "shop-lb"]
    assert sorted(maps) == ["shop-nginx", "shop-static"]

    backend = deployments["shop-backend"]["spec"]
    assert backend["replicas"] == 4
    assert backend["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    (container,) = backend["template"]["spec"]["containers"]
    ready, live = container["readinessProbe"], container["livenessProbe"]
    assert ready["httpGet"] == {"path": "/up", "port": "http"} == live["httpGet"]
    assert (ready["periodSeconds"], ready["timeoutSeconds"], ready["failureThreshold"]) == (3, 2, 4)
    assert live["initialDelaySeconds"] == 7
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    assert {"name": "GREETING", "value": "hello"} in container["env"]

    # headless: DNS answers with every ready pod, so nginx spreads over the pods and names them
    assert services["shop-backend"]["spec"]["clusterIP"] == "None"
    assert services["shop-lb"]["spec"]["type"] == "LoadBalancer"
    assert services["shop-lb"]["spec"]["ports"][0]["port"] == 18080
    _check_references(docs)


def test_configmap_keeps_the_static_locations_and_their_cache_headers(project):
    c = parse_config(CONFIG, project, env={})
    docs = objects(render(project))
    conf = by_kind(docs, "ConfigMap")["shop-nginx"]["data"]["nginx.conf"]
    for line in render_nginx(c).splitlines():
        if line.strip().startswith(("location", "add_header", "root /srv", "try_files")):
            assert line in conf, line
    assert 'add_header Cache-Control "public, max-age=31536000, immutable";' in conf
    assert "set $scaleout_backend shop-backend.default.svc.cluster.local;" in conf
    assert "resolver kube-dns.kube-system.svc.cluster.local" in conf

    static = by_kind(docs, "ConfigMap")["shop-static"]
    volumes = {v["name"]: v for v in by_kind(docs, "Deployment")["shop-lb"]["spec"]["template"]["spec"]["volumes"]}
    paths = {i["path"]: i["key"] for i in volumes["public"]["configMap"]["items"]}
    assert set(paths) == {"offline.html", "static/app.css", "static/logo.png"}
    assert static["data"][paths["static/app.css"]] == "body{}"
    assert base64.b64decode(static["binaryData"][paths["static/logo.png"]]) == b"\x89PNG\r\n\x1a\n\x00\xff"
    worker_items = volumes["worker"]["configMap"]["items"]
    assert worker_items[0]["path"] == "service-worker.js" and static["data"][worker_items[0]["key"]] == "// worker"
    for key in list(static.get("data", {})) + list(static.get("binaryData", {})):
        assert re.fullmatch(r"[-._a-zA-Z0-9]+", key), key


def test_ingress_variant(project):
    files = render(
        project,
        CONFIG.replace("balancer: {port: 18080}", "balancer: {port: 18080, strategy: hash}"),
        balancer="ingress",
        namespace="shop-prod",
        ingress_class="nginx",
    )
    assert sorted(files) == ["backend.yaml", "balancer.yaml", "ingress.yaml"]
    docs = objects(files)
    assert {d["metadata"]["namespace"] for d in docs} == {"shop-prod"}
    (ing,) = by_kind(docs, "Ingress").values()
    assert ing["spec"]["ingressClassName"] == "nginx"
    routes = {
        (p["path"], p["pathType"]): p["backend"]["service"]["name"] for p in ing["spec"]["rules"][0]["http"]["paths"]
    }
    assert routes[("/", "Prefix")] == "shop-backend"
    assert routes[("/static/", "Prefix")] == "shop-lb"  # static files keep scaleout's cache headers
    assert routes[("/offline.html", "Exact")] == "shop-lb"
    assert routes[("/service-worker.js", "Exact")] == "shop-lb"
    assert ing["metadata"]["annotations"]["nginx.ingress.kubernetes.io/upstream-hash-by"] == "$cookie_session"
    assert "clusterIP" not in by_kind(docs, "Service")["shop-backend"]["spec"]  # the controller wants a normal Service
    assert by_kind(docs, "Service")["shop-lb"]["spec"]["type"] == "ClusterIP"
    assert "Not carried over: X-Upstream-Addr" in files["ingress.yaml"]
    _check_references(docs)


def test_image_option_and_prebuilt_image(project):
    docs = objects(render(project, image="registry.example.com/team/shop:1.0"))
    assert (
        by_kind(docs, "Deployment")["shop-backend"]["spec"]["template"]["spec"]["containers"][0]["image"]
        == "registry.example.com/team/shop:1.0"
    )
    with pytest.raises(UsageError, match="--image"):
        render(project, image="Not An Image")


def test_refusals(project):
    with pytest.raises(UsageError, match="balancer.strategy least_conn"):
        render(project, CONFIG.replace("balancer: {port: 18080}", "balancer: {port: 18080, strategy: least_conn}"))
    with pytest.raises(UsageError, match="--balancer"):
        render(project, balancer="traefik")
    with pytest.raises(UsageError, match="--namespace"):
        render(project, namespace="Bad_NS")
    (project / "public" / "big.bin").write_bytes(b"\0" * (1024 * 1024))
    with pytest.raises(UsageError, match="ConfigMap holds at most 1 MiB"):
        render(project)


def _check_references(docs) -> None:
    """What the schema cannot see: selectors match pod labels, named ports exist, volumes and
    Ingress backends name objects that are in the export."""
    services, maps, secrets = by_kind(docs, "Service"), by_kind(docs, "ConfigMap"), by_kind(docs, "Secret")
    pods = {}
    for name, d in by_kind(docs, "Deployment").items():
        spec = d["spec"]
        labels = spec["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items(), name
        pods[name] = (labels, {p["name"] for c in spec["template"]["spec"]["containers"] for p in c["ports"]})
        for c in spec["template"]["spec"]["containers"]:
            for probe in ("readinessProbe", "livenessProbe"):
                port = c[probe].get("httpGet", {}).get("port")
                assert port is None or port in pods[name][1], (name, probe)
        for v in spec["template"]["spec"].get("volumes", []):
            if "secret" in v:
                keys = set(secrets[v["secret"]["secretName"]]["data"])
                assert all(item["key"] in keys for item in v["secret"].get("items", [])), (name, v)
                continue
            cm = maps[v["configMap"]["name"]]
            keys = set(cm.get("data", {})) | set(cm.get("binaryData", {}))
            for item in v["configMap"].get("items", []):
                assert item["key"] in keys, (name, item)
    for name, s in services.items():
        matching = [p for p, (labels, ports) in pods.items() if s["spec"]["selector"].items() <= labels.items()]
        assert len(matching) == 1, (name, matching)
        for port in s["spec"]["ports"]:
            assert port["targetPort"] in pods[matching[0]][1]
    for ing in by_kind(docs, "Ingress").values():
        for p in ing["spec"]["rules"][0]["http"]["paths"]:
            svc = services[p["backend"]["service"]["name"]]
            assert p["backend"]["service"]["port"]["name"] in {x["name"] for x in svc["spec"]["ports"]}
