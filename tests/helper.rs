//! Shared by the integration tests: running the built binary, reading a local sink.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A `svr-etl` command with a clean environment: no SVR_ETL_* or RUST_LOG from the
/// caller, no AWS metadata look-ups, run in `cwd`.
pub fn svr_etl(cwd: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_svr-etl"));
    cmd.current_dir(cwd);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("SVR_ETL") || key == "RUST_LOG" || key == "JOURNAL_STREAM" {
            cmd.env_remove(key);
        }
    }
    cmd.env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}

/// [`svr_etl`] with its clock starting at `when` (UTC, as `faketime` reads it) and
/// running on from there.
pub fn svr_etl_at(cwd: &Path, when: &str) -> Command {
    svr_etl_faked(cwd, &[when])
}

/// [`svr_etl`] under `faketime` with `args` before the program (`["-f", "@... x3600"]`
/// speeds the clock). faketime runs it as a child and passes no signal on.
pub fn svr_etl_faked(cwd: &Path, args: &[&str]) -> Command {
    let plain = svr_etl(cwd);
    let mut cmd = Command::new("faketime");
    cmd.current_dir(cwd)
        .env("TZ", "UTC")
        .args(args)
        .arg(plain.get_program());
    for (key, value) in plain.get_envs() {
        match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    cmd
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Parses newline-delimited JSON.
pub fn ndjson(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

/// The `key=value` fields of `svr-etl once`'s line.
pub fn field<'a>(line: &'a str, name: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
}

/// A `file://` location as a path.
pub fn file_path(location: &str) -> PathBuf {
    PathBuf::from(
        location
            .strip_prefix("file://")
            .expect("a file:// location"),
    )
}

/// Every file under `dir` (relative paths, sorted), hidden ones included.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// R^2 of `pred` against `truth`, written out independently of the crate's own.
pub fn r2(truth: &[f64], pred: &[f64]) -> f64 {
    let mean = truth.iter().sum::<f64>() / truth.len() as f64;
    let sse: f64 = truth.iter().zip(pred).map(|(t, p)| (t - p).powi(2)).sum();
    let sst: f64 = truth.iter().map(|t| (t - mean).powi(2)).sum();
    1.0 - sse / sst
}

/// A moto S3 server on a loopback port of its own, stopped on drop.
pub struct Moto {
    child: std::process::Child,
    pub port: u16,
    /// The keys [`Moto::client`] signs with: any on an open server, the
    /// administrator's on one that enforces IAM.
    admin: Keys,
}

/// An access key pair.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Keys {
    pub key: String,
    pub secret: String,
}

impl Moto {
    pub fn start() -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Moto::start_on(port)
    }

    /// Starts on `port` (to bring a stopped server back where clients expect it).
    pub fn start_on(port: u16) -> Moto {
        Moto::spawn(port, &[])
    }

    /// A server that checks every request against IAM, as AWS does, with an
    /// administrator made in its first three requests.
    pub fn start_enforcing() -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut moto = Moto::spawn(port, &[("INITIAL_NO_AUTH_ACTION_COUNT", "3")]);
        let admin: Keys =
            serde_json::from_value(moto.iam(&["bootstrap"])).expect("administrator keys");
        moto.admin = admin;
        moto
    }

    /// Runs `tests/support/moto_iam.py` as the administrator; returns what it prints.
    pub fn iam(&self, args: &[&str]) -> Value {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/moto_iam.py");
        let out = Command::new("python3")
            .arg(script)
            .arg(self.endpoint())
            .args(args)
            .env("ADMIN_KEY", &self.admin.key)
            .env("ADMIN_SECRET", &self.admin.secret)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "moto_iam.py {args:?}: {}",
            stderr(&out)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn admin(&self) -> &Keys {
        &self.admin
    }

    fn spawn(port: u16, env: &[(&str, &str)]) -> Moto {
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto_server is installed (pip install -r .ci/requirements.txt)");
        let moto = Moto {
            child,
            port,
            admin: Keys {
                key: "test".into(),
                secret: "test".into(),
            },
        };
        wait_for(
            std::time::Duration::from_secs(60),
            "moto_server to listen",
            || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        );
        moto
    }

    /// The server's process (moto_server execs into the Python process that serves).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the server at once (SIGKILL: a crash, not a clean shutdown).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A client for checking what the server holds.
    pub fn client(&self) -> aws_sdk_s3::Client {
        set_fake_credentials();
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                &self.admin.key,
                &self.admin.secret,
                None,
                None,
                "moto",
            ))
            .endpoint_url(self.endpoint())
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// Creates a bucket with a fresh name and returns it.
    pub async fn bucket(&self) -> String {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let name = format!(
            "svr-etl-test-{}",
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        self.client()
            .create_bucket()
            .bucket(&name)
            .send()
            .await
            .expect("create bucket");
        name
    }

    /// The environment a `svr-etl` process needs to use this server.
    pub fn env(&self, cmd: &mut Command) {
        cmd.env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("SVR_ETL__S3__ENDPOINT_URL", self.endpoint())
            .env("SVR_ETL__S3__FORCE_PATH_STYLE", "true")
            .env("SVR_ETL__S3__REGION", "us-east-1");
    }

    /// Keys under `prefix` in `bucket`.
    pub async fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let out = self
            .client()
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .send()
            .await
            .expect("list objects");
        let mut keys: Vec<String> = out
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect();
        keys.sort();
        keys
    }

    pub async fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let out = self
            .client()
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("get {key}: {e:?}"));
        out.body.collect().await.unwrap().into_bytes().to_vec()
    }

    /// The object's ETag, quotes removed; a multipart object's ends in -<parts>.
    pub async fn etag(&self, bucket: &str, key: &str) -> String {
        let head = self
            .client()
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("head {key}: {e:?}"));
        head.e_tag()
            .unwrap_or_default()
            .trim_matches('"')
            .to_string()
    }

    /// Multipart uploads still open in `bucket`.
    pub async fn open_uploads(&self, bucket: &str) -> usize {
        let out = self
            .client()
            .list_multipart_uploads()
            .bucket(bucket)
            .send()
            .await
            .expect("list multipart uploads");
        out.uploads().len()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// In-process sinks read credentials from the environment, as on a server.
pub fn set_fake_credentials() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::env::set_var("AWS_ACCESS_KEY_ID", "test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    });
}

/// Polls `ready` until it holds; panics naming `what` after `deadline`.
pub fn wait_for(deadline: std::time::Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !ready() {
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A TCP proxy on a loopback port of its own in front of `target`: it forwards
/// connections until [`Proxy::refuse`], after which connections to its port are refused
/// (nothing listens) and open ones are cut, until [`Proxy::accept`]. The server behind
/// it keeps its state, as a bucket does through a network outage.
pub struct Proxy {
    pub port: u16,
    target: u16,
    state: Arc<ProxyState>,
}

#[derive(Default)]
struct ProxyState {
    refusing: std::sync::atomic::AtomicBool,
    open: std::sync::Mutex<Vec<std::net::TcpStream>>,
}

use std::sync::Arc;

impl Proxy {
    pub fn start(target: u16) -> Proxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = Proxy {
            port,
            target,
            state: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn serve(&self, listener: std::net::TcpListener) {
        let (state, target) = (self.state.clone(), self.target);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if state.refusing.load(std::sync::atomic::Ordering::SeqCst) {
                    // Dropping the listener closes the port.
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let mut open = state.open.lock().unwrap();
                open.push(client.try_clone().unwrap());
                open.push(server.try_clone().unwrap());
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
    }

    /// Refuses connections and cuts the open ones.
    pub fn refuse(&self) {
        self.state
            .refusing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        // Wakes the accept loop so that it sees the switch and closes the port.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        for stream in self.state.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        wait_for(
            std::time::Duration::from_secs(10),
            "the proxy port to close",
            || std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err(),
        );
    }

    /// Forwards again, on the same port.
    pub fn accept(&self) {
        self.state
            .refusing
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let listener = std::net::TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        self.serve(listener);
    }
}

/// Copies `from` into `to` until either end closes.
fn pipe(mut from: std::net::TcpStream, mut to: std::net::TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(std::net::Shutdown::Both);
    });
}

/// Writes a data set whose model predicts NaN for tiny gamma: features of +-1e300 make
/// the squared distances infinite, and with a kernel width of 1/gamma = inf the
/// kernel is NaN. The way to a failed trial that is not a crash.
pub fn write_nan_model_data(path: &Path) {
    let rows: String = (0..4)
        .map(|i| {
            let a = if i % 2 == 0 { "1e300" } else { "-1e300" };
            format!(
                "{{\"point_id\":{i},\"is_train\":{},\"a\":{a},\"y_true\":{i}}}\n",
                i < 2
            )
        })
        .collect();
    std::fs::write(path, rows).unwrap();
}

/// A script of `tests/support/` serving on a loopback port it prints as
/// "listening PORT"; stopped on drop.
pub struct LoopbackScript {
    child: std::process::Child,
    pub port: u16,
}

impl LoopbackScript {
    pub fn start(name: &str, args: &[&str], env: &[(&str, &str)]) -> LoopbackScript {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/support")
            .join(name);
        let mut child = Command::new("python3")
            .arg(script)
            .args(args)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs the test's servers");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{name} said {line:?}"));
        LoopbackScript { child, port }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sends `method path` with `body` and returns the answer's body.
    pub fn request(&self, method: &str, path: &str, body: &str) -> String {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        body.to_string()
    }
}

impl Drop for LoopbackScript {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tests/support/s3_faults.py` in front of a server on `target`: answers as S3 does
/// when busy, racing, encrypting with KMS or on another clock, as [`FaultProxy::set`]
/// says.
pub struct FaultProxy(LoopbackScript);

impl FaultProxy {
    pub fn start(target: u16) -> FaultProxy {
        FaultProxy(LoopbackScript::start(
            "s3_faults.py",
            &["--target", &target.to_string()],
            &[],
        ))
    }

    pub fn endpoint(&self) -> String {
        self.0.endpoint()
    }

    /// Replaces the faults (see the script's doc).
    pub fn set(&self, faults: Value) {
        self.0.request("POST", "/__faults__", &faults.to_string());
    }

    /// Faults injected so far, by kind.
    pub fn injected(&self, kind: &str) -> u64 {
        let counts: Value =
            serde_json::from_str(&self.0.request("GET", "/__faults__", "")).unwrap();
        counts["injected"][kind].as_u64().unwrap_or(0)
    }
}

/// A child process whose stderr lines are collected as they come.
pub struct Logged {
    pub child: std::process::Child,
    pub log: Arc<std::sync::Mutex<Vec<String>>>,
    /// The thread collecting the lines; it ends when the child's stderr closes, and
    /// [`Logged::wait`] joins it.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Logged {
    /// Spawns `cmd` with stderr piped into the log and stdout discarded.
    pub fn spawn(cmd: &mut Command) -> Logged {
        let mut child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let lines = log.clone();
        let stderr = child.stderr.take().unwrap();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                lines.lock().unwrap().push(line);
            }
        });
        Logged {
            child,
            log,
            reader: Some(reader),
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) -> nix::Result<()> {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, signal)
    }

    /// Waits for the child to exit and for its last lines to be collected: the reader
    /// thread can lag behind a busy machine, and an exit seen before the lines would
    /// hide the ones a test looks for.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        let status = self.child.wait().unwrap();
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        status
    }
}

/// A test that fails midway leaves no process behind.
impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a [`Hooked`] sink's hook is told: a create about to start (it may refuse it
/// with an error), or one that has ended.
pub enum Create<'a> {
    Starting(&'a str),
    Ended(&'a str),
}

/// A real sink with a hook called around each create; every other operation passes
/// straight through.
pub struct Hooked {
    pub inner: Arc<dyn svr_etl::sink::Sink>,
    #[allow(clippy::type_complexity)]
    pub hook: Arc<dyn Fn(Create<'_>) -> Option<svr_etl::sink::SinkError> + Send + Sync>,
}

impl std::fmt::Debug for Hooked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooked")
            .field("inner", &self.inner)
            .finish()
    }
}

#[async_trait::async_trait]
impl svr_etl::sink::Sink for Hooked {
    async fn create(
        &self,
        key: &str,
        body: svr_etl::sink::BodyWriter,
        deadline: &svr_etl::sink::Deadline,
    ) -> Result<svr_etl::sink::Written, svr_etl::sink::SinkError> {
        if let Some(refused) = (self.hook)(Create::Starting(key)) {
            return Err(refused);
        }
        let written = self.inner.create(key, body, deadline).await;
        (self.hook)(Create::Ended(key));
        written
    }

    async fn replace(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &'static str,
        deadline: &svr_etl::sink::Deadline,
    ) -> Result<svr_etl::sink::Written, svr_etl::sink::SinkError> {
        self.inner.replace(key, bytes, content_type, deadline).await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, svr_etl::sink::SinkError> {
        self.inner.get(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, svr_etl::sink::SinkError> {
        self.inner.list(prefix).await
    }

    async fn delete(&self, key: &str) -> Result<(), svr_etl::sink::SinkError> {
        self.inner.delete(key).await
    }

    async fn clean_stale(
        &self,
        age: std::time::Duration,
    ) -> Result<usize, svr_etl::sink::SinkError> {
        self.inner.clean_stale(age).await
    }

    fn location(&self, key: &str) -> String {
        self.inner.location(key)
    }
}
