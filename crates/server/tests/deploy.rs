//! Keeps deploy/ from rotting: every Kubernetes overlay is rendered with `kubectl kustomize`
//! and checked against the Kubernetes schemas (`kubernetes-validate`), the pod's command line
//! and readiness probe are run against the real binary, the Dockerfile's entrypoint is started
//! as written, and the seccomp profile is loaded in front of the server (`seccomp-run.py`).
//!
//! The external tools are not optional: a test whose tool is missing fails and says what to
//! install (.ci/run installs all of them), so a machine without them cannot pass silently.
//!   - kubectl: Debian's `kubernetes-client` package (kubectl 1.20, whose embedded kustomize
//!     is v2.0.3; the manifests keep to what it supports). Newer kubectl works too.
//!   - kubernetes-validate: `pip install kubernetes-validate` (brings PyYAML, which the tests
//!     also use, through the same `python3`, to read the rendered YAML).
//!   - /usr/bin/python3 with libseccomp's bindings: Debian's `python3-seccomp`.
//!   - redis-cli (Debian's `redis-tools`), which the cluster overlay's init script drives.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Kubernetes versions the rendered manifests are validated against, besides the newest one
/// the installed kubernetes-validate knows. 1.29 is the oldest release the manifests are
/// meant for (everything they use is GA there: seccompProfile, policy/v1
/// PodDisruptionBudget); kubernetes-validate 1.37 ships schemas from 1.25 on.
const OLDEST_KUBERNETES: &str = "1.29.0";

/// How long a server may take to answer after it is started (the test machines are loaded).
const START_TIMEOUT: Duration = Duration::from_secs(60);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

fn deploy_dir() -> PathBuf {
    repo_root().join("deploy")
}

// ---------------------------------------------------------------------------------------------
// Tools

fn find_on_path(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let path = PathBuf::from(name);
        return path.is_file().then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The path of a required tool, or a failure that says how to install it.
fn require(name: &str, install: &str) -> PathBuf {
    find_on_path(name).unwrap_or_else(|| {
        panic!(
            "`{name}` is not installed: {install}. .ci/run installs it; these deployment tests \
             fail rather than skip without it, so that a machine missing it cannot pass them."
        )
    })
}

fn kubectl() -> PathBuf {
    require(
        "kubectl",
        "apt-get install kubernetes-client (Debian's kubectl)",
    )
}

fn kubernetes_validate() -> PathBuf {
    require(
        "kubernetes-validate",
        "python3 -m pip install kubernetes-validate (add --break-system-packages on Debian 12)",
    )
}

/// The Python interpreter with libseccomp's bindings: Debian's python3-seccomp is built for
/// the system interpreter only.
fn seccomp_python() -> PathBuf {
    let python = require("/usr/bin/python3", "apt-get install python3");
    let probe = Command::new(&python)
        .args(["-c", "import seccomp"])
        .output()
        .expect("run /usr/bin/python3");
    assert!(
        probe.status.success(),
        "/usr/bin/python3 cannot import seccomp (libseccomp's Python bindings): \
         apt-get install python3-seccomp. .ci/run installs it; this test fails rather than \
         skips without it.\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    python
}

/// Runs a command to completion; fails the test if it cannot be started.
fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Scratch directories

struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "shardis-deploy-test-{}-{label}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a scratch directory");
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------------
// Kubernetes manifests

/// Every overlay under deploy/kubernetes/overlays, so that a new one is tested without
/// being listed here.
fn overlays() -> Vec<PathBuf> {
    let dir = deploy_dir().join("kubernetes/overlays");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.join("kustomization.yaml").is_file())
        .collect();
    found.sort();
    assert!(
        found.iter().any(|p| p.ends_with("standalone")),
        "no standalone overlay in {}",
        dir.display()
    );
    found
}

fn overlay_name(overlay: &Path) -> String {
    overlay
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `kubectl kustomize <overlay>`: the YAML the overlay deploys.
fn render(overlay: &Path) -> String {
    let out = output(Command::new(kubectl()).arg("kustomize").arg(overlay));
    assert!(
        out.status.success(),
        "kubectl kustomize {} failed:\n{}",
        overlay.display(),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The YAML documents as JSON values, read by PyYAML (which kubernetes-validate depends on)
/// through `python3`. Empty documents are kept, so that the caller can refuse them.
fn yaml_documents(yaml: &str) -> Vec<Value> {
    const TO_JSON: &str = "import json, sys, yaml\n\
        docs = [d for d in yaml.safe_load_all(sys.stdin) if d is not None]\n\
        json.dump(docs, sys.stdout)\n";
    let python = require(
        "python3",
        "apt-get install python3 (with PyYAML, which pip installs with kubernetes-validate)",
    );
    let mut child = Command::new(python)
        .args(["-c", TO_JSON])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(yaml.as_bytes())
        .expect("write YAML to python3");
    let out = child.wait_with_output().expect("python3 output");
    assert!(
        out.status.success(),
        "python3 could not read the rendered YAML (it needs PyYAML, which pip installs with \
         kubernetes-validate):\n{}",
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from python3")
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {value}"))
}

fn strings_at(value: &Value, pointer: &str) -> Vec<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("no list at {pointer} in {value}"))
        .iter()
        .map(|v| {
            v.as_str()
                .unwrap_or_else(|| panic!("{v} at {pointer} is not a string"))
                .to_string()
        })
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter()
        .filter(|d| d.get("kind").and_then(Value::as_str) == Some(kind))
        .collect()
}

fn named<'a>(docs: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    of_kind(docs, kind)
        .into_iter()
        .find(|d| d.pointer("/metadata/name").and_then(Value::as_str) == Some(name))
}

/// A rendered overlay: its documents and the one StatefulSet with its `shardis` container.
struct Rendered {
    name: String,
    yaml: String,
    docs: Vec<Value>,
}

impl Rendered {
    fn of(overlay: &Path) -> Rendered {
        let yaml = render(overlay);
        let docs = yaml_documents(&yaml);
        Rendered {
            name: overlay_name(overlay),
            yaml,
            docs,
        }
    }

    fn statefulset(&self) -> &Value {
        let sets = of_kind(&self.docs, "StatefulSet");
        assert_eq!(sets.len(), 1, "{}: one StatefulSet expected", self.name);
        sets[0]
    }

    fn pod_spec(&self) -> &Value {
        self.statefulset()
            .pointer("/spec/template/spec")
            .expect("pod template spec")
    }

    fn container(&self) -> &Value {
        self.pod_spec()
            .pointer("/containers")
            .and_then(Value::as_array)
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.get("name").and_then(Value::as_str) == Some("shardis"))
            })
            .unwrap_or_else(|| panic!("{}: no container named shardis", self.name))
    }

    /// The container's port named `redis`.
    fn container_port(&self) -> u16 {
        self.container_port_named("redis")
    }

    fn container_port_named(&self, name: &str) -> u16 {
        self.container()
            .pointer("/ports")
            .and_then(Value::as_array)
            .and_then(|ports| {
                ports
                    .iter()
                    .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
            })
            .and_then(|p| p.get("containerPort"))
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or_else(|| panic!("{}: no container port named {name}", self.name))
    }

    /// A setting of the ConfigMap's `redis.conf` (the last line naming it).
    fn redis_conf_setting(&self, name: &str) -> Option<String> {
        let conf = of_kind(&self.docs, "ConfigMap")
            .into_iter()
            .find_map(|cm| cm.pointer("/data/redis.conf").and_then(Value::as_str))
            .unwrap_or_else(|| panic!("{}: no ConfigMap with redis.conf", self.name));
        conf.lines()
            .filter_map(|l| l.trim().strip_prefix(name)?.strip_prefix(' '))
            .map(|v| v.trim().to_string())
            .next_back()
    }
}

// ---------------------------------------------------------------------------------------------
// Running servers

/// INFO's process_id on `port`, if a server answers there.
fn serving_pid(port: u16) -> Option<u32> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"INFO server\r\n").ok()?;
    let mut reply = String::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(at) = reply.find("process_id:") {
            let rest = &reply[at + "process_id:".len()..];
            if let Some(end) = rest.find('\r') {
                return rest[..end].trim().parse().ok();
            }
        }
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        reply.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A server process started by a test, killed when dropped.
struct Running {
    child: Child,
    port: u16,
    stderr: PathBuf,
    _dir: TempDir,
}

impl Running {
    /// Starts `make(port, dir)` (a scratch `dir` for `--dir`) and waits until the process
    /// itself answers INFO on `port`. Retries on another port if the first was taken meanwhile.
    fn start(label: &str, make: impl Fn(u16, &Path) -> Command) -> Running {
        let mut last_error = String::new();
        for _ in 0..5 {
            let dir = TempDir::new(label);
            let port = free_port();
            let stderr = dir.path().join("stderr.log");
            let mut cmd = make(port, dir.path());
            let mut child = cmd
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&stderr).expect("stderr file"))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
            let deadline = Instant::now() + START_TIMEOUT;
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    last_error = format!(
                        "{cmd:?} exited ({status}) before serving:\n{}",
                        std::fs::read_to_string(&stderr).unwrap_or_default()
                    );
                    break;
                }
                if serving_pid(port) == Some(child.id()) {
                    return Running {
                        child,
                        port,
                        stderr,
                        _dir: dir,
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "{cmd:?} did not answer on port {port} within {START_TIMEOUT:?}:\n{}",
                        std::fs::read_to_string(&stderr).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if !last_error.contains("in use") {
                break;
            }
        }
        panic!("{last_error}");
    }

    /// SET then GET of a key on a fresh connection, with the `redis` crate.
    fn set_get_round_trip(&self) {
        let client =
            redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).expect("client");
        let mut conn = client.get_connection().expect("connect");
        let value = format!("deployed-{}", self.child.id());
        let set: String = redis::cmd("SET")
            .arg("deploy:check")
            .arg(&value)
            .query(&mut conn)
            .expect("SET");
        assert_eq!(set, "OK");
        let got: String = redis::cmd("GET")
            .arg("deploy:check")
            .query(&mut conn)
            .expect("GET");
        assert_eq!(got, value);
    }

    /// Makes a cluster node that knows no other serve every slot (CLUSTER ADDSLOTSRANGE on
    /// its node port, `port` + 1) and waits for its cluster state to turn ok.
    fn serve_every_slot(&self) {
        let client =
            redis::Client::open(format!("redis://127.0.0.1:{}/", self.port + 1)).expect("client");
        let mut conn = client.get_connection().expect("connect to the node port");
        let _: () = redis::cmd("CLUSTER")
            .arg("ADDSLOTSRANGE")
            .arg(0)
            .arg(16383)
            .query(&mut conn)
            .expect("CLUSTER ADDSLOTSRANGE");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query(&mut conn)
                .expect("CLUSTER INFO");
            if info.contains("cluster_state:ok") {
                return;
            }
            assert!(Instant::now() < deadline, "cluster state not ok: {info}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn config_get(&self, name: &str) -> String {
        let client =
            redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).expect("client");
        let mut conn = client.get_connection().expect("connect");
        let pair: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg(name)
            .query(&mut conn)
            .expect("CONFIG GET");
        assert_eq!(pair.len(), 2, "CONFIG GET {name}: {pair:?}");
        pair[1].clone()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Stops the server (SIGKILL) and waits for it.
    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a command that must exit by itself within `within`; returns its status and stderr.
fn run_to_exit(mut cmd: Command, within: Duration) -> (ExitStatus, String) {
    let dir = TempDir::new("exit");
    let stderr = dir.path().join("stderr.log");
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return (status, std::fs::read_to_string(&stderr).unwrap_or_default());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} still running after {within:?}:\n{}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn server_binary() -> &'static str {
    env!("CARGO_BIN_EXE_shardis-server")
}

/// Replaces the value that follows `--name` in `args`, or appends `--name value`.
fn override_arg(args: &mut Vec<String>, name: &str, value: &str) {
    let flag = format!("--{name}");
    match args.iter().position(|a| *a == flag) {
        Some(at) if at + 1 < args.len() => args[at + 1] = value.to_string(),
        _ => args.extend([flag, value.to_string()]),
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Rendering and schemas

#[test]
fn every_overlay_renders_and_passes_the_kubernetes_schemas() {
    let validate = kubernetes_validate();
    for overlay in overlays() {
        let rendered = Rendered::of(&overlay);
        let name = &rendered.name;
        for (i, doc) in rendered.docs.iter().enumerate() {
            for field in ["/apiVersion", "/kind", "/metadata/name"] {
                assert!(
                    doc.pointer(field).and_then(Value::as_str).is_some(),
                    "{name}: document {i} has no {field} (an empty document is what \
                     kustomize v2.0.3 leaves for `$patch: delete`): {doc}"
                );
            }
        }
        let dir = TempDir::new("validate");
        let file = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&file, &rendered.yaml).expect("write rendered YAML");
        for version in [Some(OLDEST_KUBERNETES), None] {
            let mut cmd = Command::new(&validate);
            cmd.arg("--strict");
            if let Some(v) = version {
                cmd.args(["--kubernetes-version", v]);
            }
            let out = output(cmd.arg(&file));
            let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
            let against = version.unwrap_or("the newest version it knows");
            // kubernetes-validate exits 0 even when it has no schema for the version asked
            // ("could not be validated"), so every line must be a pass.
            let lines: Vec<&str> = report.lines().filter(|l| !l.trim().is_empty()).collect();
            let passed = lines
                .iter()
                .filter(|l| l.contains("passed for resource"))
                .count();
            assert!(
                out.status.success() && passed == rendered.docs.len() && passed == lines.len(),
                "{name}: kubernetes-validate --strict against {against}: {passed} of {} \
                 resources passed:\n{report}",
                rendered.docs.len()
            );
        }
    }
}

/// What deploy/README.md and the manifests' comments promise about the pods, checked on the
/// rendered output of every overlay (the schemas accept much that would break these).
#[test]
fn every_overlay_keeps_the_documented_pod_properties() {
    let profile_on_disk = deploy_dir().join("seccomp-io-uring.json");
    assert!(profile_on_disk.is_file(), "deploy/seccomp-io-uring.json");
    for overlay in overlays() {
        let r = Rendered::of(&overlay);
        let name = &r.name;
        let set = r.statefulset();
        let pod = r.pod_spec();
        let container = r.container();

        // The headless Service the StatefulSet names exists and is headless.
        let service_name = str_at(set, "/spec/serviceName");
        let headless = named(&r.docs, "Service", service_name)
            .unwrap_or_else(|| panic!("{name}: no Service {service_name}"));
        assert_eq!(str_at(headless, "/spec/clusterIP"), "None", "{name}");

        // Every selector (StatefulSet, Services, PodDisruptionBudget) picks the pods.
        let labels = set
            .pointer("/spec/template/metadata/labels")
            .and_then(Value::as_object)
            .expect("pod labels");
        let selects_pods = |selector: &Value, what: &str| {
            let selector = selector.as_object().expect("selector map");
            assert!(!selector.is_empty(), "{name}: empty selector on {what}");
            for (k, v) in selector {
                assert_eq!(labels.get(k), Some(v), "{name}: {what} selects {k}={v}");
            }
        };
        selects_pods(
            set.pointer("/spec/selector/matchLabels").expect("selector"),
            "the StatefulSet",
        );
        for service in of_kind(&r.docs, "Service") {
            selects_pods(
                service.pointer("/spec/selector").expect("selector"),
                "a Service",
            );
        }
        let pdbs = of_kind(&r.docs, "PodDisruptionBudget");
        assert_eq!(pdbs.len(), 1, "{name}: one PodDisruptionBudget");
        selects_pods(
            pdbs[0]
                .pointer("/spec/selector/matchLabels")
                .expect("PDB selector"),
            "the PodDisruptionBudget",
        );

        // Non-root, read-only, no capabilities, the io_uring seccomp profile.
        assert_eq!(
            pod.pointer("/securityContext/runAsNonRoot"),
            Some(&true.into())
        );
        assert_eq!(
            pod.pointer("/securityContext/runAsUser"),
            Some(&10001.into()),
            "{name}: the image's uid"
        );
        assert_eq!(
            str_at(pod, "/securityContext/seccompProfile/type"),
            "Localhost"
        );
        assert_eq!(
            str_at(pod, "/securityContext/seccompProfile/localhostProfile"),
            "profiles/seccomp-io-uring.json",
            "{name}: the path deploy/README.md tells to install the profile at"
        );
        let sc = container.get("securityContext").expect("securityContext");
        assert_eq!(sc.get("allowPrivilegeEscalation"), Some(&false.into()));
        assert_eq!(sc.get("readOnlyRootFilesystem"), Some(&true.into()));
        assert_eq!(strings_at(sc, "/capabilities/drop"), ["ALL"]);
        assert!(
            sc.pointer("/capabilities/add").is_none(),
            "{name}: a non-root process gets nothing from capabilities.add"
        );

        // Guaranteed QoS with whole CPUs, for the static CPU manager.
        let requests = container.pointer("/resources/requests").expect("requests");
        let limits = container.pointer("/resources/limits").expect("limits");
        assert_eq!(requests, limits, "{name}: requests equal limits");
        let cpu = str_at(limits, "/cpu");
        assert!(
            cpu.parse::<u32>().is_ok_and(|n| n > 0),
            "{name}: CPU limit {cpu:?} is not a whole number of CPUs"
        );

        // Readiness and liveness probes exist; /data is the claim's mount.
        assert!(container.pointer("/readinessProbe/exec/command").is_some());
        assert!(container.get("livenessProbe").is_some());
        let mounts = container
            .get("volumeMounts")
            .and_then(Value::as_array)
            .expect("volumeMounts");
        assert!(
            mounts.iter().any(|m| m.get("name") == Some(&"data".into())
                && m.get("mountPath") == Some(&"/data".into())),
            "{name}: data mounted at /data"
        );
        let claims = set
            .pointer("/spec/volumeClaimTemplates")
            .and_then(Value::as_array)
            .expect("volumeClaimTemplates");
        assert!(
            claims
                .iter()
                .any(|c| c.pointer("/metadata/name") == Some(&"data".into())),
            "{name}: a volume claim template named data"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 2. The pod's command line, configuration and readiness probe, on the real binary

/// The value of `$(NAME)` references in the container's arguments, as the kubelet computes
/// them from the container's `env`.
fn container_env(r: &Rendered) -> BTreeMap<String, String> {
    let container = r.container();
    let mut env = BTreeMap::new();
    for var in container
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = str_at(var, "/name").to_string();
        let value = if let Some(v) = var.get("value").and_then(Value::as_str) {
            v.to_string()
        } else if let Some(field) = var.pointer("/valueFrom/fieldRef/fieldPath") {
            // The pod's IP (a cluster node's announced address): here, the loopback.
            assert_eq!(field.as_str(), Some("status.podIP"), "{}", r.name);
            "127.0.0.1".to_string()
        } else if let Some(field) = var.pointer("/valueFrom/resourceFieldRef") {
            // The only resource reference the manifests use: whole CPUs of the limit.
            assert_eq!(str_at(field, "/resource"), "limits.cpu", "{}", r.name);
            assert_eq!(str_at(field, "/divisor"), "1", "{}", r.name);
            str_at(container, "/resources/limits/cpu").to_string()
        } else {
            panic!("{}: cannot compute env {name} here: {var}", r.name)
        };
        env.insert(name, value);
    }
    env
}

fn expand(arg: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = arg.to_string();
    for (name, value) in env {
        out = out.replace(&format!("$({name})"), value);
    }
    assert!(!out.contains("$("), "unresolved reference in {arg:?}");
    out
}

/// The container's command and arguments as the server will see them, with the files of
/// mounted ConfigMaps written under `dir` and their paths pointing there.
fn pod_command_line(r: &Rendered, dir: &Path) -> Vec<String> {
    let container = r.container();
    let env = container_env(r);
    // Mounted ConfigMaps: mount path -> the ConfigMap's data.
    let mut mounted: Vec<(String, &serde_json::Map<String, Value>)> = Vec::new();
    for volume in r
        .pod_spec()
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(config_map) = volume.pointer("/configMap/name").and_then(Value::as_str) else {
            continue;
        };
        let data = named(&r.docs, "ConfigMap", config_map)
            .and_then(|cm| cm.get("data"))
            .and_then(Value::as_object)
            .unwrap_or_else(|| panic!("{}: ConfigMap {config_map} is not rendered", r.name));
        let volume_name = str_at(volume, "/name");
        for mount in container
            .get("volumeMounts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if mount.get("name").and_then(Value::as_str) == Some(volume_name) {
                mounted.push((str_at(mount, "/mountPath").to_string(), data));
            }
        }
    }
    let mut command = strings_at(container, "/command");
    command.extend(strings_at(container, "/args"));
    let mut config_files = 0;
    let line = command
        .iter()
        .map(|arg| {
            let arg = expand(arg, &env);
            for (mount_path, data) in &mounted {
                if let Some(key) = arg.strip_prefix(&format!("{mount_path}/")) {
                    let content = data
                        .get(key)
                        .and_then(Value::as_str)
                        .unwrap_or_else(|| panic!("{}: no key {key} in the ConfigMap", r.name));
                    let local = dir.join(key);
                    std::fs::write(&local, content).expect("write config file");
                    config_files += 1;
                    return local.display().to_string();
                }
            }
            arg
        })
        .collect();
    assert_eq!(
        config_files, 1,
        "{}: the pod passes the ConfigMap's redis.conf to the server",
        r.name
    );
    line
}

/// The answer to `GET path` on `port`, whole.
fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the metrics port");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: pod\r\n\r\n").as_bytes())
        .expect("send");
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read the answer");
    answer
}

/// Runs the readiness probe's command with the container port replaced by `port`.
fn readiness_probe(r: &Rendered, port: u16) -> (ExitStatus, String) {
    let probe = strings_at(r.container(), "/readinessProbe/exec/command");
    let container_port = r.container_port().to_string();
    assert!(
        probe.iter().any(|a| a.contains(&container_port)),
        "{}: the readiness probe does not use the container port {container_port}: {probe:?}",
        r.name
    );
    let probe: Vec<String> = probe
        .iter()
        .map(|a| a.replace(&container_port, &port.to_string()))
        .collect();
    let mut cmd = Command::new(require(&probe[0], "the probe's interpreter"));
    cmd.args(&probe[1..]);
    run_to_exit(cmd, Duration::from_secs(20))
}

#[test]
fn every_overlay_pod_command_line_serves_and_passes_its_readiness_probe() {
    for overlay in overlays() {
        let r = Rendered::of(&overlay);
        let name = &r.name;
        let server = Running::start(name, |port, dir| {
            let mut line = pod_command_line(&r, dir);
            assert_eq!(
                line[0], "shardis-server",
                "{name}: the command is the image's binary (in /usr/local/bin)"
            );
            override_arg(&mut line, "port", &port.to_string());
            override_arg(&mut line, "dir", &dir.display().to_string());
            override_arg(&mut line, "metrics-port", &free_port().to_string());
            let mut cmd = Command::new(server_binary());
            cmd.args(&line[1..]);
            cmd
        });
        if r.redis_conf_setting("cluster-enabled").as_deref() == Some("yes") {
            // A cluster node serves keys once slots are assigned: a cluster of itself.
            server.serve_every_slot();
        }
        server.set_get_round_trip();
        // What the ConfigMap sets took effect.
        assert_eq!(server.config_get("protected-mode"), "no", "{name}");
        // The metrics endpoint the ConfigMap turns on, where the pod says Prometheus finds it.
        let metrics_port = r
            .redis_conf_setting("metrics-port")
            .unwrap_or_else(|| panic!("{name}: redis.conf sets no metrics-port"));
        assert_eq!(
            r.container_port_named("metrics").to_string(),
            metrics_port,
            "{name}"
        );
        let annotations = r
            .statefulset()
            .pointer("/spec/template/metadata/annotations")
            .unwrap_or_else(|| panic!("{name}: no pod annotations"));
        assert_eq!(
            str_at(annotations, "/prometheus.io~1scrape"),
            "true",
            "{name}"
        );
        assert_eq!(
            str_at(annotations, "/prometheus.io~1port"),
            metrics_port,
            "{name}"
        );
        assert_eq!(
            str_at(annotations, "/prometheus.io~1path"),
            "/metrics",
            "{name}"
        );
        let scrape = http_get(
            server.config_get("metrics-port").parse().expect("a port"),
            "/metrics",
        );
        assert!(
            scrape.starts_with("HTTP/1.1 200 OK") && scrape.contains("\nshardis_shards "),
            "{name}: the metrics endpoint answers: {scrape}"
        );
        let port = server.port;
        let (status, stderr) = readiness_probe(&r, port);
        assert!(
            status.success(),
            "{name}: readiness probe failed against a serving server ({status}):\n{stderr}"
        );
        let log = server.stderr();
        server.stop();
        // And it is not vacuous: nothing listening, not ready.
        let (status, _) = readiness_probe(&r, port);
        assert!(
            !status.success(),
            "{name}: readiness probe passed with no server on port {port} (server log:\n{log})"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 3. The Dockerfile's entrypoint

/// The ENTRYPOINT of deploy/Dockerfile, in exec form.
fn dockerfile_entrypoint() -> Vec<String> {
    let dockerfile = std::fs::read_to_string(deploy_dir().join("Dockerfile")).expect("Dockerfile");
    assert!(
        dockerfile.contains("/usr/local/bin/shardis-server"),
        "the Dockerfile installs the binary in /usr/local/bin, on the image's PATH"
    );
    let line = dockerfile
        .lines()
        .find_map(|l| l.trim().strip_prefix("ENTRYPOINT "))
        .expect("an ENTRYPOINT line");
    serde_json::from_str(line.trim())
        .unwrap_or_else(|e| panic!("ENTRYPOINT {line} is not in exec (JSON) form: {e}"))
}

#[test]
fn dockerfile_entrypoint_args_are_accepted_by_the_server() {
    let entrypoint = dockerfile_entrypoint();
    assert_eq!(entrypoint[0], "shardis-server");
    let server = Running::start("docker", |port, dir| {
        let mut args: Vec<String> = entrypoint[1..].to_vec();
        override_arg(&mut args, "port", &port.to_string());
        override_arg(&mut args, "dir", &dir.display().to_string());
        // As `docker run ... shardis --shards 1` appends: one shard whatever this machine's
        // CPU count, so that the test does not depend on it (nor on its memlock limit).
        args.extend(["--shards".to_string(), "1".to_string()]);
        let mut cmd = Command::new(server_binary());
        cmd.args(args);
        cmd
    });
    server.set_get_round_trip();
    // The entrypoint's settings took effect.
    let expect = |name: &str| {
        let at = entrypoint
            .iter()
            .position(|a| *a == format!("--{name}"))
            .unwrap_or_else(|| panic!("the entrypoint sets --{name}"));
        entrypoint[at + 1].clone()
    };
    assert_eq!(server.config_get("bind"), expect("bind"));
    assert_eq!(
        server.config_get("protected-mode"),
        expect("protected-mode")
    );
}

// ---------------------------------------------------------------------------------------------
// 4. The seccomp profile, loaded in front of the real binary

fn seccomp_command(without: &[&str], server_args: &[String]) -> Command {
    let deploy = deploy_dir();
    let mut cmd = Command::new(seccomp_python());
    cmd.arg(deploy.join("seccomp-run.py"));
    for name in without {
        cmd.args(["--without", name]);
    }
    cmd.arg(deploy.join("seccomp-io-uring.json"))
        .arg("--")
        .arg(server_binary())
        .args(server_args);
    cmd
}

/// The Seccomp line of /proc/<pid>/status: 2 when a filter is installed.
fn seccomp_mode(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Seccomp:"))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

#[test]
fn seccomp_profile_lets_the_server_serve() {
    let server = Running::start("seccomp", |port, dir| {
        seccomp_command(
            &[],
            &[
                "--port".into(),
                port.to_string(),
                "--dir".into(),
                dir.display().to_string(),
                "--shards".into(),
                "2".into(),
            ],
        )
    });
    // seccomp-run.py execs the server, so the process answering is the filtered one.
    assert_eq!(
        seccomp_mode(server.child.id()),
        "2",
        "the server runs under a seccomp filter"
    );
    server.set_get_round_trip();
}

#[test]
fn seccomp_profile_without_io_uring_gives_the_servers_message() {
    let dir = TempDir::new("no-io-uring");
    let cmd = seccomp_command(
        &["io_uring_setup", "io_uring_enter", "io_uring_register"],
        &[
            "--port".into(),
            free_port().to_string(),
            "--dir".into(),
            dir.path().display().to_string(),
            "--shards".into(),
            "2".into(),
        ],
    );
    let (status, stderr) = run_to_exit(cmd, START_TIMEOUT);
    assert_eq!(
        (status.code(), status.signal()),
        (Some(1), None),
        "a clean exit with status 1, not a crash; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("io_uring is blocked (EPERM)") && stderr.contains("seccomp"),
        "the server names io_uring and seccomp:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "no panic:\n{stderr}");
}

// ---------------------------------------------------------------------------------------------
// 5. Locked memory

/// deploy/README.md says what happens in a container whose memlock limit is too small for
/// its shards: the server refuses to start and says why. (The limit is lowered in the child
/// before exec, as a container runtime sets it.)
#[test]
fn memlock_limit_below_what_the_shards_need_is_refused_with_a_message() {
    let dir = TempDir::new("memlock");
    let mut cmd = Command::new(server_binary());
    cmd.args(["--port", &free_port().to_string(), "--shards", "2", "--dir"])
        .arg(dir.path());
    const LIMIT: libc::rlim_t = 1024 * 1024;
    // SAFETY: setrlimit is async-signal-safe and only touches the child's own limits.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: LIMIT,
                rlim_max: LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (status, stderr) = run_to_exit(cmd, START_TIMEOUT);
    assert_eq!(status.code(), Some(1), "stderr:\n{stderr}");
    assert!(
        stderr.contains("RLIMIT_MEMLOCK is 1024 KiB") && stderr.contains("2 shards need"),
        "the server names the limit and what the shards need:\n{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. The cluster overlay's init script

/// Runs the cluster overlay's `cluster-init.sh` (from its rendered ConfigMap) with `sh`,
/// against `nodes` given as addresses instead of pod names; its output, and whether it
/// succeeded.
fn run_cluster_init(script: &Path, nodes: &[String], rebalance: bool) -> (bool, String) {
    let out = output(
        Command::new("sh")
            .arg(script)
            .env("PODS", nodes.len().to_string())
            .env("REPLICAS", "1")
            .env("NODES", nodes.join(" "))
            .env("REBALANCE", if rebalance { "yes" } else { "no" }),
    );
    (
        out.status.success(),
        format!("{}{}", text(&out.stdout), text(&out.stderr)),
    )
}

/// CLUSTER NODES of the node on `port`.
fn cluster_nodes(port: u16) -> String {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("client");
    let mut conn = client.get_connection().expect("connect");
    redis::cmd("CLUSTER")
        .arg("NODES")
        .query(&mut conn)
        .expect("CLUSTER NODES")
}

#[test]
fn cluster_overlay_init_script_forms_the_cluster_and_adds_pods() {
    require(
        "redis-cli",
        "apt-get install redis-tools (the Job's image, redis:7.0, has it)",
    );
    let overlay = deploy_dir().join("kubernetes/overlays/cluster");
    let r = Rendered::of(&overlay);
    let dir = TempDir::new("cluster-init");
    let script = dir.path().join("cluster-init.sh");
    let text_of_script = of_kind(&r.docs, "ConfigMap")
        .into_iter()
        .find_map(|cm| cm.pointer("/data/cluster-init.sh").and_then(Value::as_str))
        .expect("the cluster-init.sh ConfigMap");
    std::fs::write(&script, text_of_script).expect("write the script");
    let job_pods = of_kind(&r.docs, "Job")
        .first()
        .and_then(|job| job.pointer("/spec/template/spec/containers/0/env"))
        .and_then(Value::as_array)
        .and_then(|env| env.iter().find(|v| v.get("name") == Some(&"PODS".into())))
        .and_then(|v| v.get("value"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let replicas = r
        .statefulset()
        .pointer("/spec/replicas")
        .and_then(Value::as_u64)
        .map(|n| n.to_string());
    assert_eq!(
        job_pods, replicas,
        "the Job's PODS is the StatefulSet's replicas"
    );
    // The pods, as the StatefulSet starts them (one node each, announcing the pod's IP).
    let start = |i: usize| {
        Running::start(&format!("cluster-{i}"), |port, dir| {
            let mut line = pod_command_line(&r, dir);
            override_arg(&mut line, "port", &port.to_string());
            override_arg(&mut line, "dir", &dir.display().to_string());
            override_arg(&mut line, "metrics-port", "0");
            // Quicker than the pods' 5 s, for the test's agreement waits.
            override_arg(&mut line, "cluster-node-timeout", "3000");
            let mut cmd = Command::new(server_binary());
            cmd.args(&line[1..]);
            cmd
        })
    };
    let mut pods: Vec<Running> = (0..6).map(start).collect();
    let addrs = |pods: &[Running]| -> Vec<String> {
        pods.iter()
            .map(|p| format!("127.0.0.1:{}", p.port + 1))
            .collect()
    };
    let (ok, out) = run_cluster_init(&script, &addrs(&pods), true);
    assert!(ok, "cluster-init.sh failed to form the cluster:\n{out}");
    assert!(out.contains("[OK] All 16384 slots covered."), "{out}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let nodes = cluster_nodes(pods[0].port + 1);
        if nodes.matches("slave").count() == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "3 replicas expected:\n{nodes}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Run again: nothing new, only the check.
    let (ok, out) = run_cluster_init(&script, &addrs(&pods), true);
    assert!(ok && !out.contains("adding"), "{out}");
    // Scale-up by a master and its replica. (Moving slots to the new master needs MIGRATE;
    // the rebalance step is left out here.)
    pods.push(start(6));
    pods.push(start(7));
    let (ok, out) = run_cluster_init(&script, &addrs(&pods), false);
    assert!(ok, "cluster-init.sh failed to add the pods:\n{out}");
    let new_master = format!("127.0.0.1:{}@", pods[6].port + 1);
    let new_replica = format!("127.0.0.1:{}@", pods[7].port + 1);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let nodes = cluster_nodes(pods[0].port + 1);
        let line = |addr: &str| nodes.lines().find(|l| l.contains(addr)).map(str::to_string);
        let master = line(&new_master);
        let replica = line(&new_replica);
        let master_id = master.as_deref().and_then(|l| l.split(' ').next());
        if let (Some(m), Some(r), Some(id)) = (&master, &replica, master_id) {
            if m.contains(" master ") && r.contains(&format!(" slave {id} ")) {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "new pods not joined:\n{nodes}\n{out}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
