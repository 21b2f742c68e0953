"""A single-node KRaft Apache Kafka broker on this machine, for the demo and the integration tests.

No Docker and no Kafka download: Maven fetches the broker jars once (infra/kafka/pom.xml) and the
broker runs as a plain `java` process that outlives the command that started it. Its pid file,
config and logs live in `data_dir`, so `sgi kafka stop` in another shell finds it again.

`secure=True` (`sgi kafka start --secure`) serves SASL_SSL with SCRAM logins and ACLs instead of
PLAINTEXT; sgi/kafka_access.py makes its certificates and passwords and says what each principal may do.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from kafka.admin import KafkaAdminClient
from pydantic import SecretStr

from settings import PROJECT_ROOT, KafkaSettings, WorkerSettings
from sgi import kafka_access
from streams.kafka_security import kafka_python_options

MAX_MESSAGE_BYTES = 8 * 1024 * 1024
POM = PROJECT_ROOT / "infra" / "kafka" / "pom.xml"
BROKER_JAR_GLOB = "kafka_2.13-*.jar"
# A small heap: the broker holds a handful of tiny topics, and the tests run two brokers at once.
JVM_OPTIONS = ["-Xms256m", "-Xmx512m", "-XX:+UseG1GC", "-Djava.awt.headless=true"]

# Root at WARN keeps the log readable; the lifecycle loggers stay at INFO so the log still says
# when the broker started and stopped. The broker's stdout is redirected to server.log.
LOG4J2_PROPERTIES = """\
status = warn
shutdownHook = disable
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_OUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.console.ref = console
logger.raftserver.name = kafka.server.KafkaRaftServer
logger.raftserver.level = INFO
logger.broker.name = kafka.server.BrokerServer
logger.broker.level = INFO
"""


class KafkaLaunchError(RuntimeError):
    """The local broker could not be fetched, started or stopped; the message says what to do."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now, so tests can run beside a broker on 9092."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def fetch_jars(home: Path) -> Path:
    """Return `home/lib` holding the broker jars, running Maven once to fill it.

    Maven writes into a temporary sibling that is renamed into place only when complete,
    so an interrupted fetch is never mistaken for a usable cache.
    """
    lib = home / "lib"
    if any(lib.glob(BROKER_JAR_GLOB)):
        return lib
    missing = [tool for tool in ("mvn", "java") if shutil.which(tool) is None]
    if missing:
        raise KafkaLaunchError(
            f"Cannot fetch the Kafka broker jars: {' and '.join(missing)} not found on PATH. "
            "Install Maven and a JDK 17+ (e.g. `apt-get install maven openjdk-17-jdk-headless`), "
            f"or copy the jars of kafka_2.13 into {lib}."
        )
    home.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="lib.partial.", dir=home))
    try:
        command = ["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
                   f"-DoutputDirectory={staging}"]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not any(staging.glob(BROKER_JAR_GLOB)):
            raise KafkaLaunchError(
                f"`{' '.join(command)}` failed (exit {result.returncode}); check network access to "
                f"Maven Central. Last output:\n{_tail(result.stdout + result.stderr)}"
            )
        if lib.exists():
            shutil.rmtree(lib)  # holds no broker jar, so it is a leftover, not a cache
        staging.rename(lib)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return lib


def _cluster_id() -> str:
    """A Kafka-style id (base64url of a random UUID, no padding), as `StorageTool random-uuid` makes."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):  # would be read as a command-line option
            return cluster_id


def _pid_alive(pid: int) -> bool:
    """True if `pid` is a live Kafka broker; a zombie or a recycled pid does not count."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path(f"/proc/{pid}")
    if not proc.exists():  # not Linux: trust the signal
        return True
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes()
    except (OSError, IndexError):
        return False
    return state != "Z" and b"kafka.Kafka" in cmdline


@dataclass
class LocalKafka:
    """One broker+controller process whose pid file, config and logs live in `data_dir`."""

    home: Path
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 9092
    controller_port: int | None = None  # None: port + 1
    # SASL_SSL + SCRAM + ACLs instead of PLAINTEXT; fixed when the data dir is first formatted.
    secure: bool = False
    # The Faust app id whose group and internal topics the `worker` principal may use (secure only).
    worker_app_id: str = "sgi"
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.home = Path(self.home)
        self.data_dir = Path(self.data_dir)
        if self.controller_port is None:
            self.controller_port = self.port + 1

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "kafka.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    @property
    def access_file(self) -> Path:
        """The principals' generated passwords (secure only; owner-only)."""
        return self.data_dir / "access.json"

    @property
    def ca_file(self) -> Path:
        """The certificate a client of the secured broker trusts."""
        return self.data_dir / "tls" / "ca.pem"

    def client_settings(self, principal: str = "admin") -> KafkaSettings:
        """KafkaSettings that log in to this broker as `principal` (secure), or plain ones."""
        if not self.secure:  # spelt out: a login in the environment must not apply to a plain broker
            return KafkaSettings(bootstrap=self.bootstrap, security_protocol="PLAINTEXT", username="",
                                 password=SecretStr(""), ssl_cafile=None)
        passwords = kafka_access.load_or_make_passwords(self.access_file) if self.access_file.exists() else {}
        if principal not in passwords:
            raise KafkaLaunchError(f"no login for {principal!r} in {self.access_file}; start the broker secured")
        return KafkaSettings(bootstrap=self.bootstrap, security_protocol="SASL_SSL", username=principal,
                             password=SecretStr(passwords[principal]), ssl_cafile=self.ca_file)

    def client_env(self, principal: str = "admin") -> dict[str, str]:
        """The SGI_KAFKA_* variables of client_settings(principal), for a child process; plain ones
        name PLAINTEXT and an empty login, so a secured login inherited from the parent is not used."""
        login = self.client_settings(principal)
        return {
            "SGI_KAFKA_BOOTSTRAP": login.bootstrap,
            "SGI_KAFKA_SECURITY_PROTOCOL": login.security_protocol,
            "SGI_KAFKA_SSL_CAFILE": str(login.ssl_cafile or ""),
            "SGI_KAFKA_USERNAME": login.username,
            "SGI_KAFKA_PASSWORD": login.password.get_secret_value(),
        }

    def pid(self) -> int | None:
        """The pid of the running broker from this data_dir, or None."""
        if self._process is not None and self._process.poll() is not None:
            self._process = None  # reaped: it exited on its own
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    def is_running(self) -> bool:
        return self.pid() is not None

    def status(self) -> str:
        pid = self.pid()
        if pid is None:
            return f"Kafka not running (data in {self.data_dir})"
        return f"Kafka running on {self.bootstrap} (pid {pid}), data in {self.data_dir}"

    def start(self, timeout: float = 60.0) -> None:
        """Start the broker and return once it answers clients; a no-op if it already runs."""
        if self.is_running():
            return
        java = shutil.which("java")
        if java is None:
            raise KafkaLaunchError("java not found on PATH; install a JDK 17+ to run the local broker.")
        lib = fetch_jars(self.home)
        for port in (self.port, self.controller_port or self.port + 1):
            if not self._port_free(port):
                raise KafkaLaunchError(
                    f"Port {self.host}:{port} is already in use; stop whatever listens there "
                    "(maybe another broker) or choose other ports."
                )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        scram = self._prepare_access()
        properties = self._write_config()
        base_command = [java, *JVM_OPTIONS, f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
                        "-cp", f"{lib}/*"]
        self._format_storage(base_command, properties, scram)

        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                [*base_command, "kafka.Kafka", str(properties)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # survives Ctrl-C in, and the exit of, the starting shell
            )
        self.pid_file.write_text(f"{self._process.pid}\n")
        try:
            self._wait_until_ready(timeout)
            if self.secure:
                self._grant_acls()
        except (KafkaLaunchError, kafka_access.AccessError):
            self.stop()
            raise

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM lets the broker close its logs cleanly; SIGKILL only if it hangs."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            if not self._wait_for_exit(pid, timeout):
                os.kill(pid, signal.SIGKILL)
                self._wait_for_exit(pid, 10.0)
        self._process = None
        self.pid_file.unlink(missing_ok=True)

    def __enter__(self) -> LocalKafka:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _port_free(self, port: int) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            return probe.connect_ex((self.host, port)) != 0

    def _prepare_access(self) -> list[str]:
        """Secure: the passwords (made once) and certificates (made when missing), and the storage tool's
        SCRAM arguments. A data dir formatted one way is never started the other way: a secured one
        started plain would serve its topics to anyone, a plain one started secured would have no logins."""
        formatted = (self.data_dir / "logs" / "meta.properties").exists()
        if not self.secure:
            if self.access_file.exists():
                raise KafkaLaunchError(f"{self.data_dir} holds a secured broker; start it with --secure "
                                       "(or use another SGI_KAFKA_DATA_DIR)")
            return []
        if formatted and not self.access_file.exists():
            raise KafkaLaunchError(f"{self.data_dir} holds a broker formatted without --secure (no SCRAM logins); "
                                   "start it without --secure, or use another SGI_KAFKA_DATA_DIR")
        try:
            passwords = kafka_access.load_or_make_passwords(self.access_file)
            if not (self.ca_file.exists() and (self.ca_file.parent / "broker.pem").exists()):
                kafka_access.make_certificates(self.ca_file.parent, self.host)
        except (OSError, kafka_access.AccessError) as error:
            raise KafkaLaunchError(f"cannot make the secured broker's logins or certificates: {error}") from error
        return kafka_access.scram_arguments(passwords)

    def _grant_acls(self) -> None:
        admin = KafkaAdminClient(client_id="sgi-acls", request_timeout_ms=15000,
                                 **self._admin_options())
        try:
            kafka_access.create_acls(admin, self.worker_app_id)
        finally:
            admin.close()

    def _admin_options(self) -> dict[str, object]:
        return {"bootstrap_servers": self.bootstrap, **kafka_python_options(self.client_settings("admin"))}

    def _write_config(self) -> Path:
        """Rewritten on every start so changed ports take effect; everything sized for one node."""
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.quorum.bootstrap.servers": f"{self.host}:{self.controller_port}",
            "log.dirs": str(self.data_dir / "logs"),
            "num.partitions": "1",
            # Topics are created explicitly, with the partition count the pipeline needs.
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # Consumers in tests and the demo join at once instead of waiting 3 s for company.
            "group.initial.rebalance.delay.ms": "0",
            # The default 128 MiB dedupe buffer would not fit the small heap; Kafka requires
            # strictly more than 1 MiB per cleaner thread, so 1048576 itself is refused.
            "log.cleaner.dedupe.buffer.size": "2097152",
            # A busy child's state (a year of facts) travels as one message: an Absorb after a
            # merge, and the child-state table's changelog record.
            "message.max.bytes": str(MAX_MESSAGE_BYTES),
        }
        if self.secure:
            admin_password = kafka_access.load_or_make_passwords(self.access_file)["admin"]
            settings.update(kafka_access.broker_properties(self.host, self.port, self.controller_port or self.port + 1,
                                                           self.ca_file.parent, admin_password))
        properties = self.data_dir / "server.properties"
        text = "".join(f"{key}={value}\n" for key, value in settings.items())
        if self.secure:  # holds the admin password (the broker's own SCRAM login)
            kafka_access.write_private(properties, text.encode())
        else:
            properties.write_text(text)
        (self.data_dir / "log4j2.properties").write_text(LOG4J2_PROPERTIES)
        return properties

    def _format_storage(self, base_command: list[str], properties: Path, scram: list[str]) -> None:
        """KRaft needs its log dir formatted once with a cluster id (and, secured, the SCRAM logins:
        they live in the metadata log); later starts reuse it."""
        if (self.data_dir / "logs" / "meta.properties").exists():
            return
        command = [*base_command, "kafka.tools.StorageTool", "format", "-t", _cluster_id(),
                   "-c", str(properties), "--standalone", *scram]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            output = _tail(result.stdout + result.stderr)
            for password in kafka_access.load_or_make_passwords(self.access_file).values() if scram else ():
                output = output.replace(password, "***")  # the tool may echo its arguments
            raise KafkaLaunchError(
                f"Formatting Kafka storage in {self.data_dir / 'logs'} failed (exit {result.returncode}):\n{output}"
            )

    def _wait_until_ready(self, timeout: float) -> None:
        """A listening port is not enough: the broker must have registered and answer metadata."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise KafkaLaunchError(
                    f"Kafka exited with code {self._process.returncode} while starting. "
                    f"Last lines of {self.log_file}:\n{self._log_tail()}"
                )
            # Probe the socket first: the admin client logs loudly while nobody listens.
            if not self._port_free(self.port):
                try:
                    admin = KafkaAdminClient(bootstrap_timeout_ms=2000, request_timeout_ms=5000,
                                             **self._admin_options())
                    try:
                        admin.list_topics()
                        return
                    finally:
                        admin.close()
                except Exception as error:  # any failure just means "not ready yet"
                    last_error = error
            time.sleep(0.5)
        raise KafkaLaunchError(
            f"Kafka did not answer on {self.bootstrap} within {timeout:.0f} s (last error: {last_error!r}). "
            f"Last lines of {self.log_file}:\n{self._log_tail()}"
        )

    def _wait_for_exit(self, pid: int, timeout: float) -> bool:
        if self._process is not None and self._process.pid == pid:
            try:
                self._process.wait(timeout)  # also reaps our own child, so no zombie lingers
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                return True
            time.sleep(0.2)
        return False

    def _log_tail(self) -> str:
        try:
            return _tail(self.log_file.read_text(errors="replace"))
        except OSError:
            return "(no log written)"


# --- the `sgi kafka ...` command ------------------------------------------------------------


def _broker_from_settings(args: argparse.Namespace) -> LocalKafka:
    """The broker that KafkaSettings.bootstrap points at (its first host:port)."""
    settings = KafkaSettings()
    host, _, port = settings.bootstrap.split(",")[0].strip().rpartition(":")
    return LocalKafka(home=settings.home, data_dir=settings.data_dir, host=host or "127.0.0.1",
                      port=int(port), controller_port=getattr(args, "controller_port", None),
                      secure=getattr(args, "secure", False), worker_app_id=WorkerSettings().app_id)


PRINCIPAL_ROLES = {
    "admin": "super user: topic set-up, operators, `sgi demo`",
    "partner": "partner publishers: write the inbound topic, read nothing",
    "worker": "`sgi worker`",
    "sink": "`sgi sink`: read the derived topics",
}


def access_instructions(broker: LocalKafka) -> str:
    """The environment each principal's process needs, one `export` line per principal."""
    lines = [f"Secured (SASL_SSL, SCRAM-SHA-512, ACLs); passwords in {broker.access_file}, CA in {broker.ca_file}."]
    for principal, role in PRINCIPAL_ROLES.items():
        exports = " ".join(f"{name}={value}" for name, value in broker.client_env(principal).items())
        lines += [f"# {principal}: {role}", f"export {exports}"]
    return "\n".join(lines)


def _cmd_fetch(args: argparse.Namespace) -> int:
    try:
        lib = fetch_jars(KafkaSettings().home)
    except KafkaLaunchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"Kafka jars ready in {lib}")
    return 0


def _cmd_start(args: argparse.Namespace) -> int:
    broker = _broker_from_settings(args)
    try:
        broker.start()
        print(broker.status())
        if broker.secure:
            print(access_instructions(broker))
    except (KafkaLaunchError, kafka_access.AccessError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    broker = _broker_from_settings(args)
    pid = broker.pid()
    broker.stop()
    print(f"Kafka stopped (pid {pid})" if pid is not None else "Kafka was not running")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    broker = _broker_from_settings(args)
    print(broker.status())
    return 0 if broker.is_running() else 3  # 3, like `systemctl status`, means "not running"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `kafka fetch|start|stop|status` on the main CLI."""
    kafka = subparsers.add_parser(
        "kafka", help="run a local single-node Kafka broker",
        description="Run a single-node KRaft Kafka broker on this machine (no Docker needed). "
                    "Address from SGI_KAFKA_BOOTSTRAP, jars in SGI_KAFKA_HOME, data in SGI_KAFKA_DATA_DIR.",
    )
    commands = kafka.add_subparsers(dest="kafka_command", required=True, metavar="COMMAND")

    fetch = commands.add_parser(
        "fetch", help="download the broker jars with Maven",
        description="Download the Kafka broker jars with Maven (once; later calls reuse them).",
    )
    fetch.set_defaults(func=_cmd_fetch)

    start = commands.add_parser(
        "start", help="start the broker in the background",
        description="Start the broker in the background and wait until it answers clients. "
                    "Fetches the jars first if needed; does nothing if it is already running.",
    )
    start.add_argument("--controller-port", type=int, default=None,
                       help="port of the KRaft controller listener (default: the broker port + 1)")
    start.add_argument("--secure", action="store_true",
                       help="serve SASL_SSL with SCRAM logins and ACLs instead of PLAINTEXT: makes a local CA and "
                            "broker certificate and a password per principal (admin, partner, worker, sink) in the "
                            "data dir (owner-only) and prints the SGI_KAFKA_* variables each one uses. Fixed when "
                            "the data dir is first formatted")
    start.set_defaults(func=_cmd_start)

    stop = commands.add_parser(
        "stop", help="stop the broker",
        description="Stop the broker started by `kafka start` (SIGTERM, then SIGKILL after 30 s).",
    )
    stop.set_defaults(func=_cmd_stop)

    status = commands.add_parser(
        "status", help="say whether the broker is running",
        description="Say whether the broker is running; exits 0 if it is, 3 if not.",
    )
    status.set_defaults(func=_cmd_status)
