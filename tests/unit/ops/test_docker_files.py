"""No Docker engine here: check the Dockerfile structurally against the project."""

import re

from tests.paths import ROOT

DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()


def test_copies_exist_and_cover_the_package_dirs():
    sources = re.findall(r"^COPY (?!--from)(.+?) \S+$", DOCKERFILE, flags=re.M)
    copied = {part for line in sources for part in line.split()}
    assert {"pyproject.toml", "dqhash", "agents", "tables"} <= copied
    for path in copied:
        assert (ROOT / path).exists(), path


def test_runs_the_faust_worker_on_the_dqhash_app_as_non_root():
    assert 'ENTRYPOINT ["faust", "-A", "dqhash.app", "worker"]' in DOCKERFILE
    assert re.search(r"^USER (?!root)\w+", DOCKERFILE, flags=re.M)
    assert "HEALTHCHECK" in DOCKERFILE


def test_every_dqhash_variable_it_sets_is_a_real_setting():
    from dqhash.settings import VARIABLES

    names = {v.name for v in VARIABLES}
    used = set(re.findall(r"\b(DQHASH_[A-Z_]+)", DOCKERFILE + (ROOT / "docker" / "README.md").read_text()))
    assert used and used <= names, used - names


COMPOSE_PATH = ROOT / "docker" / "compose.yaml"


def compose():
    import yaml

    return yaml.safe_load(COMPOSE_PATH.read_text())


def services():
    return compose()["services"]


def env_of(service):
    env = service.get("environment", {})
    return env if isinstance(env, dict) else dict(item.split("=", 1) for item in env)


def test_compose_uses_only_real_settings():
    from dqhash.settings import VARIABLES

    names = {v.name for v in VARIABLES}
    used = set(re.findall(r"\b(DQHASH_[A-Z_]+)", COMPOSE_PATH.read_text()))
    assert used and used <= names, used - names
    for name, service in services().items():
        for var in env_of(service):
            if var.startswith(("DQHASH_", "DD_")) and name != "datadog-agent":
                assert var in names, f"{name}: {var} is not a dqhash setting"


def test_compose_settings_load():
    """Each dqhash service's environment is valid for the settings module (as a worker would load it)."""
    from dqhash.settings import load

    for name, service in services().items():
        if service.get("image") == "dqhash:local":
            env = {k: str(v) for k, v in env_of(service).items() if not str(v).startswith("${")}
            settings = load(env)
            assert settings.broker == "kafka://kafka:9092", name


def test_compose_has_the_whole_stack():
    s = services()
    assert {"kafka", "cassandra", "cassandra-init", "topics", "producer", "datadog-agent"} <= s.keys()
    kafka = env_of(s["kafka"])
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller" and kafka["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 1
    assert "kafka-topics.sh" in " ".join(s["kafka"]["healthcheck"]["test"])
    assert env_of(s["producer"])["DQHASH_ROLE"] == "producer"
    assert s["topics"]["entrypoint"] == ["dqhash", "topics", "create"]
    assert s["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_each_replica_has_its_own_state_volume_and_web_host():
    workers = {n: s for n, s in services().items() if env_of(s).get("DQHASH_ROLE") == "reconciler"}
    assert len(workers) >= 2
    volumes = [v.split(":")[0] for s in workers.values() for v in s["volumes"]]
    assert len(set(volumes)) == len(workers) and all(v in compose()["volumes"] for v in volumes)
    hosts = [env_of(s)["DQHASH_WEB_HOST"] for s in workers.values()]
    assert hosts == [s.get("hostname") for s in workers.values()] and len(set(hosts)) == len(hosts)
    for service in workers.values():
        assert service["depends_on"]["topics"]["condition"] == "service_completed_successfully"


def test_compose_paths_and_entry_points_exist():
    from dqhash import cli

    s = services()
    build = s["worker-1"]["build"]
    assert (COMPOSE_PATH.parent / build["context"] / build["dockerfile"]).is_file()
    for service in s.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE_PATH.parent / source).exists(), source
    # `dqhash topics create` is a real command of the CLI the image installs (entry point `dqhash`)
    assert cli._parser().parse_args(s["topics"]["entrypoint"][1:]).run
    assert 'dqhash = "dqhash.cli:main"' in (ROOT / "pyproject.toml").read_text()
    assert "init.cql" in " ".join(s["cassandra-init"]["entrypoint"])
    assert "CREATE KEYSPACE IF NOT EXISTS shop" in (COMPOSE_PATH.parent / "cassandra" / "init.cql").read_text()


def test_datadog_agent_watches_the_dqhash_consumer_groups():
    import yaml

    from dqhash.settings import load

    conf = yaml.safe_load((ROOT / "docker" / "datadog" / "kafka_consumer.yaml").read_text())
    groups = conf["instances"][0]["consumer_groups"]
    app_id = env_of(services()["worker-1"])["DQHASH_APP_ID"]
    assert {app_id, f"{app_id}-producer", f"{app_id}-audit-cassandra"} <= groups.keys()
    assert env_of(services()["datadog-agent"])["DD_DOGSTATSD_NON_LOCAL_TRAFFIC"] == "true"
    assert load({"DQHASH_ROLE": "producer", "DQHASH_APP_ID": app_id}).faust_app_id == f"{app_id}-producer"


def test_the_stack_runs_without_datadog_and_the_agent_comes_with_its_profile():
    s = services()
    assert s["datadog-agent"]["profiles"] == ["datadog"]
    for name, service in s.items():
        if name != "datadog-agent" and service.get("profiles") != ["debezium"]:
            assert "profiles" not in service, f"{name} would not start without a profile"
            assert "DD_API_KEY" not in str(service.get("environment", {})), f"{name} needs a DataDog key"
            assert "datadog-agent" not in service.get("depends_on", {}), f"{name} waits for the optional agent"


def test_reconciler_healthchecks_ask_for_readiness():
    for name, service in services().items():
        if env_of(service).get("DQHASH_ROLE") == "reconciler":
            assert "/readyz" in " ".join(service["healthcheck"]["test"]), name


def test_the_build_context_leaves_out_local_state_and_virtualenvs():
    import fnmatch

    rules = [r for r in (ROOT / ".dockerignore").read_text().splitlines() if r and not r.startswith("#")]

    def included(path: str) -> bool:
        keep = True
        for rule in rules:
            negated, pattern = rule.startswith("!"), rule.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path.split("/")[0], pattern):
                keep = negated
        return keep

    for path in (".venv/lib/x.py", "dqhash-data/db", ".git/HEAD", "tests/" + "unit/x.py", "build/lib/x"):
        assert not included(path), path
    for path in ("pyproject.toml", "README.md", "dqhash/cli/__init__.py", "agents/web.py", "tables/__init__.py"):
        assert included(path), path
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE, re.M)
    assert copied and all(included(part) for line in copied for part in line.split()), copied


def test_the_stack_has_a_load_generator_so_up_shows_verdicts():
    from dqhash import cli

    loadgen = services()["loadgen"]
    assert loadgen["entrypoint"][:2] == ["dqhash", "generate"]
    assert cli._parser().parse_args(loadgen["entrypoint"][1:]).run
    env = env_of(loadgen)
    assert env["DQHASH_HASH_COLUMNS"].split(",")[0] == "id" and env["DQHASH_CASSANDRA_TABLE"] == "customers"
    assert loadgen["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert loadgen["depends_on"]["cassandra-init"]["condition"] == "service_completed_successfully"


def test_the_debezium_profile_feeds_the_workers_the_table_the_cloud_copy_holds():
    """--profile debezium: PostgreSQL with logical decoding, Kafka Connect, and the connector registered once; its
    change topic and transaction topic match the workers' DQHASH_DEBEZIUM_TOPICS, its table is the workers' table,
    and its password comes from the environment."""
    import json

    s = services()
    optional = {n for n, service in s.items() if service.get("profiles") == ["debezium"]}
    assert optional == {"postgres", "connect", "connector-init"}
    assert not any(set(service.get("depends_on", {})) & optional for n, service in s.items() if n not in optional)
    assert "wal_level=logical" in s["postgres"]["command"]
    connector = json.loads((COMPOSE_PATH.parent / "debezium" / "connector.json").read_text())["config"]
    assert connector["database.password"] == "${env:POSTGRES_PASSWORD}"  # never a literal in the file
    assert env_of(s["connect"])["CONNECT_CONFIG_PROVIDERS"] == "env"
    assert connector["provide.transaction.metadata"] == "true" and connector["value.converter.schemas.enable"] == "true"
    worker = env_of(s["worker-1"])
    pattern = re.compile(worker["DQHASH_DEBEZIUM_TOPICS"])
    table = worker["DQHASH_TABLE"]
    assert table in connector["table.include.list"].split(",")
    assert pattern.fullmatch(f"{connector['topic.prefix']}.{table}") and pattern.fullmatch(
        f"{connector['topic.prefix']}.transaction"
    )
    init = (COMPOSE_PATH.parent / "postgres" / "init.sql").read_text()
    assert f"CREATE TABLE IF NOT EXISTS {table}" in init
    assert all(column in init for column in worker["DQHASH_HASH_COLUMNS"].split(","))
    assert (
        "connector.json" in " ".join(s["connector-init"]["volumes"]) and "409" in s["connector-init"]["entrypoint"][2]
    )
