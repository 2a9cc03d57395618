//! A fleet of real processes on loopback: a `fleet` service on SQLite or on a scratch
//! PostgreSQL database, ONU processes per OLT and PON port, `olt worker` controllers; the API
//! read through the one client of it (`olt::worker::FleetClient`), the ONUs' flash read
//! offline at the end. Everything started is stopped when the lab is dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use olt::worker::FleetClient;
use serde_json::Value;

use crate::process::Proc;

/// Which database the fleet keeps its state in.
#[derive(Clone, Debug)]
pub enum Backend {
    /// A SQLite file in the lab's directory.
    Sqlite,
    /// A scratch database on the PostgreSQL server of this URL, dropped afterwards.
    Postgres(String),
}

impl Backend {
    /// SQLite always; PostgreSQL too when `FLEET_TEST_POSTGRES_URL` names a server (otherwise
    /// the skip is said on standard error, with why).
    ///
    /// `FLEET_TEST_BACKENDS=postgres` (or `sqlite`) keeps only that one: `.ci/run` runs the
    /// SQLite half with the workspace's tests, then the PostgreSQL half on its own.
    pub fn all(test: &str) -> Vec<Backend> {
        let only = std::env::var("FLEET_TEST_BACKENDS").unwrap_or_default();
        let wants = |name: &str| only.is_empty() || only.split(',').any(|b| b.trim() == name);
        let mut v = Vec::new();
        if wants("sqlite") {
            v.push(Backend::Sqlite);
        }
        match std::env::var("FLEET_TEST_POSTGRES_URL") {
            Ok(u) if !u.is_empty() && wants("postgres") => v.push(Backend::Postgres(u)),
            Ok(u) if !u.is_empty() => {}
            _ => eprintln!(
                "{test}: PostgreSQL skipped: FLEET_TEST_POSTGRES_URL is not set (.ci/postgres starts a throwaway server and sets it)"
            ),
        }
        v
    }

    /// Its name.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A free loopback TCP port (the kernel's choice).
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// One OLT of the lab: its ONUs (one process tree per PON port) and where they are.
pub struct Olt {
    /// Its name.
    pub name: String,
    /// Its address.
    pub listen: String,
    /// Each port: its first ONU-ID, ONU count, first ONU port, group.
    pub pons: Vec<(u8, u16, u16, u16, String)>,
    onus: Vec<Proc>,
}

/// The lab.
pub struct FleetLab {
    /// Its directory.
    pub dir: tempfile::TempDir,
    lab: String,
    fleet_bin: String,
    /// The database URL the fleet uses.
    pub db: String,
    scratch: Option<fleet::store::ScratchDatabase>,
    /// The fleet's port.
    pub port: u16,
    fleet: Option<Proc>,
    /// The OLTs.
    pub olts: Vec<Olt>,
    /// The controllers, by name.
    pub controllers: Vec<(String, Proc)>,
    /// The lease the fleet gives (ms).
    pub lease_ms: u64,
}

impl FleetLab {
    /// A lab with keys and a V1.0 golden image, and its fleet service running on `backend`.
    /// `lab` and `fleet_bin` are the test package's `lab` and `lab-fleet` binaries.
    pub fn new(lab: &str, fleet_bin: &str, backend: &Backend) -> FleetLab {
        let dir = tempfile::tempdir().unwrap();
        let (db, scratch) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("fleet.db").display()),
                None,
            ),
            Backend::Postgres(admin) => {
                let s = runtime()
                    .block_on(fleet::store::ScratchDatabase::create(admin))
                    .unwrap();
                (s.url.clone(), Some(s))
            }
        };
        let mut l = FleetLab {
            dir,
            lab: lab.into(),
            fleet_bin: fleet_bin.into(),
            db,
            scratch,
            port: free_tcp_port(),
            fleet: None,
            olts: Vec::new(),
            controllers: Vec::new(),
            lease_ms: 1500,
        };
        l.onu_tool(&["image", "keygen", "--out", &l.p("lab")]);
        l.build("V1.0", 8000, false);
        l.start_fleet();
        l
    }

    /// A path in the lab's directory.
    pub fn p(&self, f: &str) -> String {
        self.dir.path().join(f).display().to_string()
    }

    /// The fleet's URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn tool(&self, name: &str) -> Command {
        let mut c = Command::new(&self.lab);
        c.arg(name);
        c
    }

    /// Runs `onu ARGS`, which must succeed.
    pub fn onu_tool(&self, args: &[&str]) -> Vec<u8> {
        let out = self.tool("onu").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "onu {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Builds `VERSION.img` and `VERSION.json`.
    pub fn build(&self, version: &str, size: usize, fails_to_boot: bool) {
        let mut args = vec![
            "image".to_string(),
            "build".into(),
            format!("--key={}", self.p("lab.key")),
            "--model=LAB-ONU-1".into(),
            format!("--version={version}"),
            "--security-version=1".into(),
            format!("--size={size}"),
            format!("--out={}", self.p(&format!("{version}.img"))),
        ];
        if fails_to_boot {
            args.push("--fails-to-boot".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.onu_tool(&args);
    }

    /// Starts (or starts again) the fleet service on the lab's port and database.
    pub fn start_fleet(&mut self) {
        let mut child = Command::new(&self.fleet_bin)
            .args([
                "serve",
                "--tick-ms",
                "100",
                "--heartbeat-ms",
                "250",
                "--poll-ms",
                "150",
            ])
            .arg(format!("--lease-ms={}", self.lease_ms))
            .arg(format!("--listen=127.0.0.1:{}", self.port))
            .arg(format!("--state-dir={}", self.p("fleet-state")))
            .arg(format!("--db={}", self.db))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let mut out = BufReader::new(out);
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        assert!(first.contains("listening on http://127.0.0.1:"), "{first}");
        // The rest of what it says, read so that it never writes to a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        self.fleet = Some(Proc(child));
    }

    /// Stops the fleet service: SIGTERM (`kill = false`) or SIGKILL.
    pub fn stop_fleet(&mut self, kill: bool) {
        if let Some(mut p) = self.fleet.take() {
            if kill {
                let _ = p.0.kill();
                let _ = p.0.wait();
            }
            drop(p);
        }
    }

    /// One of the fleet's tokens.
    pub fn token(&self, role: &str) -> String {
        let out = Command::new(&self.fleet_bin)
            .args(["token", "--role", role])
            .arg(format!("--state-dir={}", self.p("fleet-state")))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// A client of the fleet with the token of `role`.
    pub fn client(&self, role: &str) -> FleetClient {
        FleetClient::new(&self.url(), &self.token(role), Duration::from_secs(30))
    }

    /// Runs `fleet ARGS` against the service (operator token), which must succeed; its output.
    pub fn fleet_cli(&self, args: &[&str]) -> String {
        let out = Command::new(&self.fleet_bin)
            .args(args)
            .arg(format!("--url={}", self.url()))
            .arg(format!("--state-dir={}", self.p("fleet-state")))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "fleet {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Adds an OLT named `name` with `pons` ports of `onus` ONUs each (ONU-IDs from
    /// `first_id` on, distinct across the lab so that serial numbers are too), its ONU
    /// processes started from the V1.0 golden image.
    pub fn add_olt(&mut self, name: &str, pons: u8, onus: u16, first_id: u16) {
        self.add_olt_on(name, pons, onus, first_id, &["V1.0"]);
    }

    /// [`FleetLab::add_olt`], each port's ONUs split in order into as many equal runs as
    /// `bases` names, run `k` started from the golden image `bases[k].img` (built first).
    pub fn add_olt_on(&mut self, name: &str, pons: u8, onus: u16, first_id: u16, bases: &[&str]) {
        let runs = bases.len() as u16;
        assert!(
            runs > 0 && onus.is_multiple_of(runs),
            "{onus} ONUs a port do not split into {runs} runs"
        );
        // Each OLT of every lab of this test process searches its own range: the labs of tests
        // running in parallel never pick the same free ports before their ONUs bind them.
        static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 120;
        let base = crate::process::free_ports(20_000 + 250 * n, pons as u16 * onus + 1);
        let listen = format!("127.0.0.1:{}", base + pons as u16 * onus);
        let mut olt = Olt {
            name: name.into(),
            listen: listen.clone(),
            pons: Vec::new(),
            onus: Vec::new(),
        };
        for p in 1..=pons {
            let first = first_id + (p as u16 - 1) * onus;
            let port = base + (p as u16 - 1) * onus;
            let group = format!("239.255.{}.{}:47000", 100 + self.olts.len(), p);
            let dir = self.p(&format!("onus-{name}-{p}"));
            let per = onus / runs;
            for (k, base) in bases.iter().enumerate() {
                let k = k as u16;
                let child = self
                    .tool("onu")
                    .args([
                        "run",
                        "--supervise",
                        "--busy-ms",
                        "100",
                        "--reboot-ms",
                        "100",
                    ])
                    .arg(format!("--count={per}"))
                    .arg(format!("--base-id={}", first + k * per))
                    .arg(format!("--listen=127.0.0.1:{}", port + k * per))
                    .arg(format!("--olt={listen}"))
                    .arg(format!("--group={group}"))
                    .arg(format!("--state-dir={dir}"))
                    .arg(format!("--public-key={}", self.p("lab.pub")))
                    .arg(format!("--golden={}", self.p(&format!("{base}.img"))))
                    .env("RUST_LOG", "error")
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                olt.onus.push(Proc(child));
            }
            olt.pons.push((p, first, onus, port, group));
        }
        self.olts.push(olt);
    }

    /// Starts a controller of OLT `olt` (by index) named `name`.
    pub fn start_controller(&mut self, olt: usize, name: &str) {
        let o = &self.olts[olt];
        let mut c = self.tool("olt");
        c.args([
            "worker",
            "--timeout-ms",
            "500",
            "--retries",
            "4",
            "--reboot-timeout-s",
            "15",
            "--rescan-s",
            "2",
        ])
        .arg(format!("--fleet={}", self.url()))
        .arg(format!("--olt-id={}", o.name))
        .arg(format!(
            "--region={}",
            if olt.is_multiple_of(2) {
                "north"
            } else {
                "south"
            }
        ))
        .arg(format!("--controller={name}"))
        .arg(format!("--listen={}", o.listen))
        .arg(format!("--cache-dir={}", self.p(&format!("cache-{name}"))))
        .env("FLEET_TOKEN", self.token("controller"))
        .env("RUST_LOG", "error");
        for (p, first, n, port, group) in &o.pons {
            c.arg(format!(
                "--onus={p}/{first}-{}@127.0.0.1:{port}",
                first + n - 1
            ));
            c.arg(format!("--group={p}/{group}"));
        }
        let child: Child = c.stdout(Stdio::null()).spawn().unwrap();
        self.controllers.push((name.to_string(), Proc(child)));
    }

    /// SIGKILLs controller `name`.
    pub fn kill_controller(&mut self, name: &str) {
        let i = self
            .controllers
            .iter()
            .position(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no controller {name}"));
        let (_, mut p) = self.controllers.remove(i);
        p.0.kill().unwrap();
        p.0.wait().unwrap();
    }

    /// Waits until `f` holds of the fleet's answer to `GET path` (viewer token), or panics
    /// after `secs`, saying what it waited for.
    pub fn wait_for(&self, what: &str, path: &str, secs: u64, f: impl Fn(&Value) -> bool) -> Value {
        let c = self.client("viewer");
        let end = Instant::now() + Duration::from_secs(secs);
        let mut last = Value::Null;
        while Instant::now() < end {
            if let Ok(v) = c.get::<Value>(path) {
                if f(&v) {
                    return v;
                }
                last = v;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("waited {secs} s for {what}; last answer: {last:#}");
    }

    /// Every ONU's flash, read offline with `onu status` (the ONU processes stopped first):
    /// (OLT, ONU-ID, status JSON).
    pub fn flash(&mut self) -> Vec<(String, u16, Value)> {
        self.controllers.clear();
        let mut out = Vec::new();
        for o in &mut self.olts {
            o.onus.clear();
        }
        for o in &self.olts {
            for (p, first, n, _, _) in &o.pons {
                for id in *first..first + n {
                    let dir = Path::new(&self.p(&format!("onus-{}-{p}", o.name)))
                        .join(format!("onu-{id}"));
                    let s = self.onu_tool(&[
                        "status",
                        "--json",
                        &format!("--state-dir={}", dir.display()),
                        &format!("--public-key={}", self.p("lab.pub")),
                    ]);
                    out.push((o.name.clone(), id, serde_json::from_slice(&s).unwrap()));
                }
            }
        }
        out
    }

    /// The lab's directory, kept (for a failing test's post-mortem) when `KEEP_FLEET_LAB` is set.
    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for FleetLab {
    fn drop(&mut self) {
        self.controllers.clear();
        self.olts.clear();
        self.fleet.take();
        if let Some(s) = self.scratch.take() {
            let _ = runtime().block_on(s.drop_now());
        }
        if std::env::var_os("KEEP_FLEET_LAB").is_some() {
            self.dir.disable_cleanup(true);
            eprintln!("fleet lab kept in {}", self.dir.path().display());
        }
    }
}

/// The version of the slot of an `onu status` with `flag` set (`committed`, `active`).
pub fn slot(s: &Value, flag: &str) -> String {
    s["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x[flag] == true)
        .map(|x| x["version"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

/// True when a slot holds a valid image of `version`.
pub fn holds_valid(s: &Value, version: &str) -> bool {
    s["slots"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["version"] == version && x["valid"] == true)
}

/// A headless Chromium to load the dashboard with: `FLEET_TEST_CHROMIUM`, else `chromium`,
/// `chromium-browser` or `chromium-headless-shell` on the PATH. None when there is none.
pub fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FLEET_TEST_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "chromium-headless-shell"]
        .iter()
        .flat_map(|n| std::env::split_paths(&path).map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

/// What a headless browser made of a page.
pub struct Loaded {
    /// The document after its scripts ran (`--dump-dom`).
    pub dom: String,
    /// Every message the page's console received (errors, uncaught exceptions, failed loads,
    /// logs), as Chromium reports them.
    pub console: Vec<String>,
}

/// Loads `url` in headless `chrome` (its profile in `profile`), lets its scripts run for
/// `budget_ms` of virtual time (network waits not counted), and returns the document and the
/// console's messages.
pub fn load_in_browser(chrome: &Path, profile: &Path, url: &str, budget_ms: u64) -> Loaded {
    let mut c = Command::new(chrome);
    c.args([
        "--headless",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
    ])
    .args([
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-sync",
    ])
    .args(["--enable-logging=stderr", "--v=0"])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg(format!("--virtual-time-budget={budget_ms}"))
    .arg("--dump-dom")
    .arg(url)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    // Chromium refuses to run its sandbox as root (this process's owner, as the kernel says).
    let root = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
    };
    if root {
        c.arg("--no-sandbox");
    }
    let child = c.spawn().unwrap();
    let out = crate::process::wait_output(child, Duration::from_secs(60))
        .unwrap_or_else(|| panic!("{} did not finish loading {url} in 60 s", chrome.display()));
    assert!(
        out.status.success(),
        "{} exited with {}: {}",
        chrome.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    Loaded {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        console,
    }
}

/// A scratch PostgreSQL database dropped when this is dropped (None for SQLite).
struct Scratch(Option<fleet::store::ScratchDatabase>);

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            let _ = runtime().block_on(s.drop_now());
        }
    }
}

/// What a fleet scenario run gave: its exit code, its standard output and error, its report.
pub struct ScenarioRun {
    /// Its exit code.
    pub code: Option<i32>,
    /// Standard output and standard error, one after the other.
    pub text: String,
    /// The report (`--report`; `Null` when none was written).
    pub report: Value,
}

/// Runs `scenario run NAME` (the library's fleet scenario `name`, by name, from a directory
/// that is not the repository's) with the tools `lab` and `fleet_bin`, its fleet on `backend`
/// (a scratch PostgreSQL database, dropped after), from loopback port `port` on, bounded in
/// time: a run that does not end in `secs` is killed (with its process group) and failed.
pub fn run_scenario(
    lab: &str,
    fleet_bin: &str,
    name: &str,
    backend: &Backend,
    port: u16,
    secs: u64,
) -> ScenarioRun {
    use std::os::unix::process::CommandExt;
    let elsewhere = tempfile::tempdir().unwrap();
    let report = elsewhere.path().join("report.json");
    let scratch = Scratch(match backend {
        Backend::Sqlite => None,
        Backend::Postgres(admin) => Some(
            runtime()
                .block_on(fleet::store::ScratchDatabase::create(admin))
                .unwrap(),
        ),
    });
    let mut c = Command::new(lab);
    c.args(["run", name])
        .arg(format!("--port={port}"))
        .arg(format!("--fleet-bin={fleet_bin}"))
        .arg(format!("--report={}", report.display()));
    if let Some(s) = &scratch.0 {
        c.arg(format!("--fleet-db={}", s.url));
    }
    let child = c
        .current_dir(elsewhere.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = crate::process::wait_output(child, Duration::from_secs(secs));
    let Some(out) = out else {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .status();
        panic!("scenario run {name} did not end within {secs} s");
    };
    drop(scratch);
    let report = std::fs::read_to_string(&report)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    ScenarioRun {
        code: out.status.code(),
        text: format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        report,
    }
}
