#!/usr/bin/env python3
"""Offline checks of rampart's Kubernetes manifests (run by k8s/check.sh).

Subcommands, each reading one rendered kustomization (a multi-document
YAML file) and exiting non-zero with one line per problem:

  core RENDERED OUT        write the built-in kinds to OUT for
                           kubernetes-validate; name the custom kinds left out
  agones RENDERED...       validate Agones resources against the Agones 1.60
                           CRD schemas (and GameServerAllocation against the
                           hand-written schema in schemas/)
  rules RENDERED           rampart's own rules (grace period, ports, probes,
                           security context, PDB, Agones specifics)
  prom-rules RENDERED OUT  extract the PrometheusRule groups to a plain rules
                           file for promtool
  adapter RENDERED RULES   every Pods metric an HPA uses is served by a
                           prometheus-adapter rule in RULES
  alerts RULES TESTS DOC   every alert: severity, summary, description, a
                           runbook_url whose anchor exists in DOC, and a test
                           in TESTS that expects it to fire

Only PyYAML and jsonschema are needed (tomllib is in Python 3.11+).
"""

from __future__ import annotations

import copy
import json
import os
import re
import sys
import tomllib

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
AGONES_CRDS = os.environ.get(
    "AGONES_CRDS", os.path.join(os.path.dirname(REPO), "shared", "agones", "crds-1.60.yaml")
)
GSA_SCHEMA = os.path.join(HERE, "schemas", "gameserverallocation.json")

# Groups whose kinds kubernetes-validate knows (built into Kubernetes).
CORE_GROUPS = {
    "", "v1", "apps", "batch", "policy", "autoscaling", "networking.k8s.io",
    "rbac.authorization.k8s.io", "storage.k8s.io", "scheduling.k8s.io",
    "coordination.k8s.io", "discovery.k8s.io", "node.k8s.io",
}
AGONES_GROUPS = {"agones.dev", "autoscaling.agones.dev", "allocation.agones.dev",
                 "multicluster.agones.dev"}

CONTAINER = "rampart"          # the server's container name, everywhere
UID = 65532                    # the image's non-root user
HEALTH_PING_SECONDS = 2        # the server's Agones Health period
EXPECTED_PORTS = {             # name: (containerPort, protocol)
    "http": (8000, "TCP"),
    "udp-0": (5000, "UDP"),
    "ws": (5080, "TCP"),
}
SIDECAR_PORT = 8080            # bound by the Agones SDK sidecar in the pod


# libyaml's loader when PyYAML has it: the Agones CRDs are 1.8 MB.
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(path):
    with open(path, encoding="utf-8") as handle:
        return [doc for doc in yaml.load_all(handle, Loader=LOADER) if doc]


def group_of(doc):
    api = doc.get("apiVersion", "")
    return api.split("/")[0] if "/" in api else ""


def name_of(doc):
    meta = doc.get('metadata') or {}
    return f"{doc.get('kind')}/{meta.get('name') or meta.get('generateName', '') + '*'}"


# --- core: what kubernetes-validate gets -----------------------------------

def cmd_core(rendered, out):
    docs = load(rendered)
    core = [d for d in docs if group_of(d) in CORE_GROUPS]
    skipped = sorted({f"{d['kind']} ({d['apiVersion']})" for d in docs
                      if group_of(d) not in CORE_GROUPS})
    with open(out, "w", encoding="utf-8") as handle:
        yaml.safe_dump_all(core, handle, sort_keys=False)
    print(f"{len(core)} built-in resources; custom kinds checked elsewhere: "
          f"{', '.join(skipped) if skipped else 'none'}")
    return 0


# --- agones: CRD schemas -----------------------------------------------------

def to_jsonschema(node):
    """An OpenAPI v3 structural schema as a strict draft-4 JSON schema.

    The API server (with kubectl's default --validate=strict) rejects fields
    a structural schema does not declare unless it says
    x-kubernetes-preserve-unknown-fields; draft-4 says that with
    additionalProperties: false. nullable becomes a null type;
    x-kubernetes-int-or-string accepts an integer or a string.
    """
    if isinstance(node, list):
        return [to_jsonschema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties"):
            out[key] = {k: to_jsonschema(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = to_jsonschema(value) if isinstance(value, dict) else value
        elif key in ("anyOf", "allOf", "oneOf"):
            out[key] = [to_jsonschema(v) for v in value]
        elif key.startswith("x-kubernetes-") or key in ("nullable", "format", "default",
                                                        "description", "title", "example"):
            continue
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if (out.get("type") in ("object", ["object", "null"]) and "properties" in out
            and "additionalProperties" not in out
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


OBJECT_META = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253},
        "generateName": {"type": "string"},
        "namespace": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def agones_validators():
    from jsonschema import Draft4Validator

    validators = {}
    for crd in load(AGONES_CRDS):
        if crd.get("kind") != "CustomResourceDefinition":
            continue
        group = crd["spec"]["group"]
        kind = crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if not version.get("served"):
                continue
            schema = to_jsonschema(version["schema"]["openAPIV3Schema"])
            schema.setdefault("properties", {})
            schema["properties"]["apiVersion"] = {"enum": [f"{group}/{version['name']}"]}
            schema["properties"]["kind"] = {"enum": [kind]}
            schema["properties"]["metadata"] = OBJECT_META
            schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
            schema["additionalProperties"] = False
            Draft4Validator.check_schema(schema)
            validators[(f"{group}/{version['name']}", kind)] = Draft4Validator(schema)
    with open(GSA_SCHEMA, encoding="utf-8") as handle:
        gsa = json.load(handle)
    Draft4Validator.check_schema(gsa)
    validators[("allocation.agones.dev/v1", "GameServerAllocation")] = Draft4Validator(gsa)
    return validators


def cmd_agones(paths):
    validators = agones_validators()
    problems, checked = [], 0
    for path in paths:
        for doc in load(path):
            if group_of(doc) not in AGONES_GROUPS:
                continue
            key = (doc.get("apiVersion"), doc.get("kind"))
            validator = validators.get(key)
            if validator is None:
                problems.append(f"{path}: {name_of(doc)}: no Agones 1.60 schema for {key[0]} {key[1]}")
                continue
            checked += 1
            for error in sorted(validator.iter_errors(doc), key=lambda e: list(e.path)):
                where = ".".join(str(p) for p in error.path) or "(top)"
                problems.append(f"{path}: {name_of(doc)}: {where}: {error.message}")
    return report(problems, f"{checked} Agones resources match the Agones 1.60 schemas")


# --- rules: rampart's own --------------------------------------------------

class Render:
    def __init__(self, docs):
        self.docs = docs

    def of(self, kind):
        return [d for d in self.docs if d.get("kind") == kind]

    def configmap(self, name):
        for doc in self.of("ConfigMap"):
            if doc["metadata"]["name"] == name:
                return doc
        return None


def env_value(container, name):
    for item in container.get("env") or []:
        if item.get("name") == name:
            return item
    return None


def server_config(render, pod, container, problems, where):
    """rampart.toml from the mounted ConfigMap, with RAMPART_* env overrides."""
    mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts") or []}
    path = (env_value(container, "RAMPART_CONFIG") or {}).get("value", "/etc/rampart/rampart.toml")
    config = {}
    for volume in pod.get("volumes") or []:
        cm = volume.get("configMap")
        mount = mounts.get(volume["name"])
        if not cm or not mount or not path.startswith(mount.rstrip("/") + "/"):
            continue
        doc = render.configmap(cm["name"])
        key = path[len(mount.rstrip("/")) + 1:]
        if doc is None or key not in (doc.get("data") or {}):
            problems.append(f"{where}: {path} is not in a rendered ConfigMap")
            return None
        try:
            config = tomllib.loads(doc["data"][key])
        except tomllib.TOMLDecodeError as error:
            problems.append(f"{where}: {path} is not valid TOML: {error}")
            return None
        break
    else:
        problems.append(f"{where}: RAMPART_CONFIG ({path}) is not mounted from a ConfigMap")
        return None
    for item in container.get("env") or []:
        if item["name"].startswith("RAMPART_") and "value" in item:
            config[item["name"][len("RAMPART_"):].lower()] = item["value"]
    return config


def check_security(pod, container, where, problems):
    psc = pod.get("securityContext") or {}
    csc = container.get("securityContext") or {}

    def eff(key):
        return csc.get(key, psc.get(key))

    if eff("runAsNonRoot") is not True:
        problems.append(f"{where}: runAsNonRoot must be true")
    if eff("runAsUser") != UID:
        problems.append(f"{where}: runAsUser must be {UID} (the image's user), not {eff('runAsUser')}")
    if csc.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{where}: readOnlyRootFilesystem must be true")
    if csc.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{where}: allowPrivilegeEscalation must be false")
    if "ALL" not in ((csc.get("capabilities") or {}).get("drop") or []):
        problems.append(f"{where}: capabilities must drop ALL")
    if ((csc.get("capabilities") or {}).get("add")):
        problems.append(f"{where}: capabilities must add none")
    if (eff("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append(f"{where}: seccompProfile must be RuntimeDefault")
    if csc.get("privileged"):
        problems.append(f"{where}: must not be privileged")


def check_volumes(pod, container, where, problems):
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts") or []}
    for path in ("/tmp", "/data"):
        name = mounts.get(path)
        if name is None:
            problems.append(f"{where}: {path} must be a volume (the root filesystem is read-only)")
        elif path == "/tmp" and "emptyDir" not in volumes.get(name, {}):
            problems.append(f"{where}: /tmp must be an emptyDir")


def check_common(render, pod, container, where, problems, agones):
    check_security(pod, container, where, problems)
    check_volumes(pod, container, where, problems)
    config = server_config(render, pod, container, problems, where)
    if config is not None:
        drain = int(config.get("drain_seconds", 30))
        if "drain_seconds" not in config:
            problems.append(f"{where}: set drain_seconds explicitly in rampart.toml (default 30)")
        pre_stop = int(((((container.get("lifecycle") or {}).get("preStop") or {})
                         .get("sleep") or {}).get("seconds")) or 0)
        grace = int(pod.get("terminationGracePeriodSeconds", 30))
        if grace <= drain + pre_stop:
            problems.append(f"{where}: terminationGracePeriodSeconds {grace} must exceed "
                            f"drain_seconds {drain} + preStop sleep {pre_stop}")
        http = str(config.get("http_addr", "127.0.0.1:8080"))
        if not http.endswith(":8000"):
            problems.append(f"{where}: http_addr {http} must listen on port 8000 "
                            f"(8080 is the Agones SDK sidecar's; one port in every variant)")
        if not http.startswith("0.0.0.0:") and not http.startswith("[::]:"):
            problems.append(f"{where}: http_addr {http} must bind every interface in a pod")
        if int(config.get("udp_sockets", 4)) != 1:
            problems.append(f"{where}: udp_sockets must be 1 (one named port udp-0 per pod)")
        for key, port in (("udp_addr", 5000), ("ws_addr", 5080)):
            if not str(config.get(key, "")).endswith(f":{port}"):
                problems.append(f"{where}: {key} must be 0.0.0.0:{port}")
        for secret in ("RAMPART_NET_KEY", "RAMPART_ADMIN_TOKEN", "DATABASE_URL", "REDIS_URL"):
            item = env_value(container, secret)
            if item is None or "secretKeyRef" not in (item.get("valueFrom") or {}):
                problems.append(f"{where}: {secret} must come from a Secret (secretKeyRef)")
        for key in ("net_key", "admin_token", "auth_jwt_secret", "database_url", "redis_url"):
            if key in config:
                problems.append(f"{where}: {key} must not be in the ConfigMap (use the Secret)")
    else:
        config = {}
    if not (container.get("resources") or {}).get("requests") or \
            not (container.get("resources") or {}).get("limits"):
        problems.append(f"{where}: resource requests and limits must be set")
    instance = env_value(container, "RAMPART_INSTANCE_ID")
    if not instance or ((instance.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath") != "metadata.name":
        problems.append(f"{where}: RAMPART_INSTANCE_ID must be the pod name (downward API)")
    return config


def all_containers(pod):
    return (pod.get("initContainers") or []) + (pod.get("containers") or [])


def selector_matches(selector, labels):
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        op, key, values = expr["operator"], expr["key"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def check_deployment(render, dep, problems):
    where = f"Deployment/{dep['metadata']['name']}"
    template = dep["spec"]["template"]
    pod = template["spec"]
    for container in all_containers(pod):
        for port in container.get("ports") or []:
            if not port.get("name"):
                problems.append(f"{where}: container {container['name']}: port "
                                f"{port.get('containerPort')}/{port.get('protocol', 'TCP')} has no name")
            if port.get("containerPort") == SIDECAR_PORT or port.get("hostPort") == SIDECAR_PORT:
                problems.append(f"{where}: port 8080 is the Agones SDK sidecar's; use 8000")
    servers = [c for c in pod.get("containers") or [] if c["name"] == CONTAINER]
    if not servers:
        return
    container = servers[0]
    cwhere = f"{where}: container {CONTAINER}"
    check_common(render, pod, container, cwhere, problems, agones=False)
    ports = {p.get("name"): p for p in container.get("ports") or []}
    for name, (number, proto) in EXPECTED_PORTS.items():
        port = ports.get(name)
        if port is None:
            problems.append(f"{cwhere}: needs a port named {name} ({number}/{proto})")
            continue
        if port.get("containerPort") != number or port.get("protocol", "TCP") != proto:
            problems.append(f"{cwhere}: port {name} must be {number}/{proto}")
        if "hostPort" in port and port["hostPort"] != number:
            problems.append(f"{cwhere}: hostPort of {name} must equal its containerPort "
                            f"(the server advertises its bound ports)")
    expected = {"livenessProbe": "/health", "readinessProbe": "/ready", "startupProbe": "/health"}
    for probe, path in expected.items():
        got = (((container.get(probe) or {}).get("httpGet")) or {})
        if got.get("path") != path or got.get("port") not in ("http", 8000):
            problems.append(f"{cwhere}: {probe} must GET {path} on port http")
    if not (((container.get("lifecycle") or {}).get("preStop") or {}).get("sleep")):
        problems.append(f"{cwhere}: needs a preStop sleep (the image has no shell)")
    if pod.get("automountServiceAccountToken") is not False:
        problems.append(f"{where}: automountServiceAccountToken must be false")
    if not env_value(container, "RAMPART_PUBLIC_IP") and not env_value(container, "RAMPART_PUBLIC_UDP_ADDRS"):
        problems.append(f"{cwhere}: must advertise a reachable address (RAMPART_PUBLIC_IP or "
                        f"RAMPART_PUBLIC_UDP_ADDRS)")
    labels = template["metadata"].get("labels") or {}
    pdbs = [p for p in render.of("PodDisruptionBudget") if selector_matches(p["spec"].get("selector") or {}, labels)]
    if not pdbs:
        problems.append(f"{where}: no PodDisruptionBudget selects its pods")
    for pdb in pdbs:
        floor = pdb["spec"].get("minAvailable")
        if floor is not None and floor in (dep["spec"].get("replicas"), "100%"):
            problems.append(f"PodDisruptionBudget/{pdb['metadata']['name']}: minAvailable equal to the "
                            f"replicas blocks every drain")
    hpas = [h for h in render.of("HorizontalPodAutoscaler")
            if h["spec"]["scaleTargetRef"].get("kind") == "Deployment"
            and h["spec"]["scaleTargetRef"].get("name") == dep["metadata"]["name"]]
    if hpas and "replicas" in dep["spec"]:
        problems.append(f"{where}: an HPA scales it, so it must not set replicas (apply would reset them)")


def check_fleet(render, fleet, problems):
    where = f"Fleet/{fleet['metadata']['name']}"
    gs = fleet["spec"]["template"]["spec"]
    pod = gs["template"]["spec"]
    ports = gs.get("ports") or []
    for port in ports:
        if not port.get("name"):
            problems.append(f"{where}: GameServer port {port.get('containerPort')} has no name "
                            f"(the server finds its ports by name)")
        if port.get("containerPort") == SIDECAR_PORT:
            problems.append(f"{where}: port {port.get('name')} uses 8080, the Agones SDK sidecar's port")
    by_name = {p.get("name"): p for p in ports}
    for name, (number, proto) in EXPECTED_PORTS.items():
        port = by_name.get(name)
        if port is None:
            problems.append(f"{where}: needs a GameServer port named {name} ({number}/{proto})")
            continue
        if port.get("containerPort") != number or port.get("protocol", "UDP") != proto:
            problems.append(f"{where}: port {name} must be containerPort {number}, protocol {proto}")
        if port.get("portPolicy", "Dynamic") != "Dynamic":
            problems.append(f"{where}: port {name} must use portPolicy Dynamic")
    if gs.get("container", CONTAINER) != CONTAINER:
        problems.append(f"{where}: spec.template.spec.container must be {CONTAINER}")
    counters = gs.get("counters") or {}
    for counter in ("sessions", "players"):
        if counter not in counters:
            problems.append(f"{where}: needs the Agones counter `{counter}` (the server keeps it)")
    if ((gs.get("eviction") or {}).get("safe")) != "Always":
        problems.append(f"{where}: eviction.safe must be Always (drained sessions are adopted)")
    health = gs.get("health") or {}
    if health.get("disabled"):
        problems.append(f"{where}: Agones health checking must stay on (it replaces liveness)")
    if int(health.get("periodSeconds", 5)) < 2 * HEALTH_PING_SECONDS:
        problems.append(f"{where}: health.periodSeconds must allow two {HEALTH_PING_SECONDS} s pings")
    if pod.get("automountServiceAccountToken") is False:
        problems.append(f"{where}: automountServiceAccountToken false would starve the SDK sidecar")
    for container in all_containers(pod):
        for port in container.get("ports") or []:
            if not port.get("name"):
                problems.append(f"{where}: container {container['name']}: port "
                                f"{port.get('containerPort')} has no name")
            if port.get("containerPort") == SIDECAR_PORT:
                problems.append(f"{where}: container {container['name']}: port 8080 is the SDK sidecar's")
    servers = [c for c in pod.get("containers") or [] if c["name"] == CONTAINER]
    if not servers:
        problems.append(f"{where}: no container named {CONTAINER}")
        return
    container = servers[0]
    cwhere = f"{where}: container {CONTAINER}"
    config = check_common(render, pod, container, cwhere, problems, agones=True)
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if probe in container:
            problems.append(f"{cwhere}: no {probe} under Agones (Agones health checking and Ready "
                            f"replace them)")
    if (env_value(container, "RAMPART_AGONES") or {}).get("value") != "true":
        problems.append(f"{cwhere}: RAMPART_AGONES must be \"true\"")
    max_sessions = int(config.get("max_sessions", 1000))
    if "sessions" in counters and counters["sessions"].get("capacity") != max_sessions:
        problems.append(f"{where}: counter sessions capacity {counters['sessions'].get('capacity')} "
                        f"must equal max_sessions {max_sessions}")


def cmd_rules(rendered):
    render = Render(load(rendered))
    problems = []
    deployments = [d for d in render.of("Deployment")
                   if any(c["name"] == CONTAINER for c in d["spec"]["template"]["spec"].get("containers") or [])]
    fleets = render.of("Fleet")
    if not deployments and not fleets:
        problems.append(f"{rendered}: no rampart Deployment or Fleet")
    for workload in render.of("Deployment") + render.of("StatefulSet"):
        if workload not in deployments:
            for container in all_containers(workload["spec"]["template"]["spec"]):
                for port in container.get("ports") or []:
                    if not port.get("name"):
                        problems.append(f"{name_of(workload)}: container {container['name']}: port "
                                        f"{port.get('containerPort')} has no name")
    for dep in deployments:
        check_deployment(render, dep, problems)
    for fleet in fleets:
        check_fleet(render, fleet, problems)
    for fas in render.of("FleetAutoscaler"):
        names = {f["metadata"]["name"] for f in fleets}
        if fas["spec"].get("fleetName") not in names:
            problems.append(f"{name_of(fas)}: fleetName {fas['spec'].get('fleetName')} is not in this render")
        counter = (fas["spec"]["policy"].get("counter") or {})
        if fas["spec"]["policy"].get("type") == "Counter" and counter.get("key") != "sessions":
            problems.append(f"{name_of(fas)}: the Counter policy must scale on `sessions`")
        if counter.get("minCapacity") and isinstance(counter.get("bufferSize"), int) \
                and counter["minCapacity"] < counter["bufferSize"]:
            problems.append(f"{name_of(fas)}: minCapacity must be at least bufferSize")
    for svc in render.of("Service"):
        for port in svc["spec"].get("ports") or []:
            if not port.get("name"):
                problems.append(f"{name_of(svc)}: port {port.get('port')} has no name")
    kinds = ", ".join(sorted({d["kind"] for d in render.docs}))
    return report(problems, f"rampart rules hold ({kinds})")


# --- prom-rules and alerts -------------------------------------------------

def cmd_prom_rules(rendered, out):
    rules = [d for d in load(rendered) if d.get("kind") == "PrometheusRule"]
    if len(rules) != 1:
        print(f"FAIL: expected one PrometheusRule in {rendered}, found {len(rules)}")
        return 1
    with open(out, "w", encoding="utf-8") as handle:
        yaml.safe_dump({"groups": rules[0]["spec"]["groups"]}, handle, sort_keys=False)
    count = sum(1 for g in rules[0]["spec"]["groups"] for r in g["rules"] if "alert" in r)
    print(f"{count} alerts extracted from PrometheusRule/{rules[0]['metadata']['name']}")
    return 0


def cmd_adapter(rendered, adapter_path):
    with open(adapter_path, encoding="utf-8") as handle:
        rules = yaml.safe_load(handle).get("rules") or []
    served = {(r.get("name") or {}).get("as"): r for r in rules}
    problems, used = [], []
    for hpa in Render(load(rendered)).of("HorizontalPodAutoscaler"):
        for metric in hpa["spec"].get("metrics") or []:
            if metric.get("type") != "Pods":
                continue
            name = metric["pods"]["metric"]["name"]
            used.append(name)
            rule = served.get(name)
            if rule is None:
                problems.append(f"{name_of(hpa)}: no rule in {adapter_path} serves {name}")
                continue
            source = rust_source()
            for series in re.findall(r"\brampart_[a-z0-9_]+", rule.get("seriesQuery", "")):
                if f'"{series}"' not in source:
                    problems.append(f"{adapter_path}: {series} is never recorded by the server")
            overrides = (rule.get("resources") or {}).get("overrides") or {}
            if {"namespace", "pod"} - set(overrides):
                problems.append(f"{adapter_path}: {name} must map the namespace and pod labels")
    if not used:
        problems.append(f"{rendered}: no HPA uses a Pods metric")
    return report(problems, f"prometheus-adapter serves {', '.join(used)}")


def github_slugs(markdown):
    slugs = set()
    for line in markdown.splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            text = re.sub(r"`", "", match.group(1)).strip().lower()
            slugs.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return slugs


def cmd_alerts(rules_path, tests_path, doc_path):
    with open(rules_path, encoding="utf-8") as handle:
        groups = yaml.safe_load(handle)["groups"]
    with open(tests_path, encoding="utf-8") as handle:
        tests = yaml.safe_load(handle)
    with open(doc_path, encoding="utf-8") as handle:
        slugs = github_slugs(handle.read())
    firing = set()
    for test in tests.get("tests") or []:
        for case in test.get("alert_rule_test") or []:
            if case.get("exp_alerts"):
                firing.add(case["alertname"])
    problems, alerts = [], []
    for group in groups:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            name = rule["alert"]
            alerts.append(name)
            labels, notes = rule.get("labels") or {}, rule.get("annotations") or {}
            if labels.get("severity") not in ("warning", "critical"):
                problems.append(f"{name}: severity must be warning or critical")
            for key in ("summary", "description", "runbook_url"):
                if not notes.get(key):
                    problems.append(f"{name}: needs the annotation {key}")
            url = notes.get("runbook_url", "")
            anchor = url.rsplit("#", 1)[-1] if "#" in url else ""
            if not url.split("#")[0].endswith("docs/OPERATIONS.md"):
                problems.append(f"{name}: runbook_url must point into docs/OPERATIONS.md")
            if anchor != name.lower():
                problems.append(f"{name}: runbook_url anchor must be #{name.lower()}")
            elif anchor not in slugs:
                problems.append(f"{name}: {doc_path} has no heading for #{anchor}")
            if name not in firing:
                problems.append(f"{name}: no test in {os.path.basename(tests_path)} expects it to fire")
    # Every rampart metric an alert reads must be one the server records
    # (a string literal in its Rust source) and one the document describes.
    with open(doc_path, encoding="utf-8") as handle:
        doc = handle.read()
    source = rust_source()
    used = set()
    for group in groups:
        for rule in group["rules"]:
            for metric in re.findall(r"\brampart_[a-z0-9_]+", rule.get("expr", "")):
                used.add(re.sub(r"_(bucket|sum|count)$", "", metric))
    for metric in sorted(used):
        if f'"{metric}"' not in source:
            problems.append(f"alerts read {metric}, which the server's source never records")
        if f"`{metric}`" not in doc:
            problems.append(f"alerts read {metric}, which {doc_path} does not describe")
    return report(problems, f"{len(alerts)} alerts: severity, annotations, runbook anchors, "
                            f"a firing test each; {len(used)} metrics recorded and documented")


def rust_source():
    text = []
    for crate in ("server", "net", "persistence"):
        for folder, _, files in os.walk(os.path.join(REPO, crate, "src")):
            for name in files:
                if name.endswith(".rs"):
                    with open(os.path.join(folder, name), encoding="utf-8") as handle:
                        text.append(handle.read())
    return "\n".join(text)


def report(problems, ok):
    for problem in problems:
        print(f"FAIL: {problem}")
    if not problems:
        print(ok)
    return 1 if problems else 0


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    cmd, args = argv[1], argv[2:]
    if cmd == "core" and len(args) == 2:
        return cmd_core(*args)
    if cmd == "agones" and args:
        return cmd_agones(args)
    if cmd == "rules" and len(args) == 1:
        return cmd_rules(*args)
    if cmd == "prom-rules" and len(args) == 2:
        return cmd_prom_rules(*args)
    if cmd == "adapter" and len(args) == 2:
        return cmd_adapter(*args)
    if cmd == "alerts" and len(args) == 3:
        return cmd_alerts(*args)
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
