//! The fleet beyond one host: the fleet service and its PostgreSQL in one network namespace,
//! two OLT controllers with their ONUs in two others, joined by two veth pairs the test makes
//! and removes (private addresses on the veths only, no route anywhere else: nothing leaves
//! them), and a campaign across them over TCP.
//!
//! It needs what the machine may not give: the `ip` tool, the right to make namespaces (root,
//! or CAP_NET_ADMIN and CAP_SYS_ADMIN) and PostgreSQL's `initdb`. Without one it says in one line that it is
//! skipped and exactly why, and passes as skipped. Whatever happens, every process it started
//! is killed, the cluster stopped, the namespaces (and with them the veths) deleted and its
//! directory removed; namespaces left by a run that was itself killed are deleted by the next.

use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The prefix of this test's namespaces: `fleetns-PID-f`, `-a`, `-b`.
const PREFIX: &str = "fleetns-";

/// Says `why` the test is skipped, past the test harness's capture.
fn skip(why: &str) {
    let _ = std::io::stderr().write_all(
        format!("the_fleet_across_three_network_namespaces: skipped: {why}\n").as_bytes(),
    );
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("{cmd:?} did not start: {e}"))
}

/// Runs `cmd`, which must succeed; its standard output.
fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ip(args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(args);
    c
}

/// A command run in namespace `ns`.
fn in_ns(ns: &str, program: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, program]);
    c
}

/// `initdb`'s directory: on the PATH, or Debian's /usr/lib/postgresql/N/bin (newest first).
fn postgres_bin() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(d) = std::env::split_paths(&path).find(|d| d.join("initdb").is_file()) {
        return Some(d);
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| d.join("initdb").is_file())
        .collect();
    dirs.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop()
}

/// Whether the process of `pid` is alive.
fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Deletes the namespaces of this test whose process is gone (a run that was killed).
fn sweep() {
    let out = run(&mut ip(&["netns", "list"]));
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid: Option<u32> = rest.split('-').next().and_then(|p| p.parse().ok());
        if pid.is_some_and(|p| !alive(p)) {
            let _ = run(&mut ip(&["netns", "del", name]));
        }
    }
}

/// Everything the test made, undone when dropped: processes killed (SIGKILL, reaped), the
/// cluster stopped, the namespaces deleted (their veths go with them).
struct Setup {
    dir: tempfile::TempDir,
    namespaces: Vec<String>,
    children: Vec<Child>,
    postgres: Option<(PathBuf, PathBuf)>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some((bin, data)) = self.postgres.take() {
            let _ = Command::new("runuser")
                .args(["-u", "nobody", "--"])
                .arg(bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        // The ONUs of `onu run --count` die with their supervisor; give them a moment to go,
        // so that no process keeps a namespace alive.
        std::thread::sleep(Duration::from_millis(300));
        for ns in &self.namespaces {
            let _ = Command::new("ip")
                .args(["netns", "pids", ns])
                .output()
                .map(|o| {
                    for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                        let _ = Command::new("kill").args(["-KILL", pid]).status();
                    }
                });
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(Stdio::null())
                .status();
        }
        let _ = &self.dir;
    }
}

impl Setup {
    fn p(&self, f: &str) -> String {
        self.dir.path().join(f).display().to_string()
    }

    fn spawn(&mut self, mut c: Command) -> u32 {
        let child = c.spawn().unwrap_or_else(|e| panic!("{c:?}: {e}"));
        let pid = child.id();
        self.children.push(child);
        pid
    }
}

const LAB: &str = env!("CARGO_BIN_EXE_lab");
const FLEET: &str = env!("CARGO_BIN_EXE_lab-fleet");

#[test]
fn the_fleet_across_three_network_namespaces() {
    // What the machine allows.
    if Command::new("ip").arg("-V").output().is_err() {
        return skip("no `ip` tool on this machine (Debian: apt-get install iproute2)");
    }
    let Some(pg) = postgres_bin() else {
        return skip(
            "no PostgreSQL on this machine (no initdb on the PATH or in /usr/lib/postgresql; \
             Debian: apt-get install postgresql; .ci/run installs it)",
        );
    };
    if Command::new("runuser").arg("--version").output().is_err() {
        return skip("no `runuser` to run PostgreSQL as nobody (Debian: util-linux)");
    }
    sweep();
    let me = std::process::id();
    let probe = format!("{PREFIX}{me}-probe");
    let out = run(&mut ip(&["netns", "add", &probe]));
    if !out.status.success() {
        return skip(&format!(
            "this process may not make network namespaces (`ip netns add` said: {}); it needs \
             root, or CAP_NET_ADMIN and CAP_SYS_ADMIN",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let _ = run(&mut ip(&["netns", "del", &probe]));

    let started = Instant::now();
    let mut s = Setup {
        dir: tempfile::tempdir().unwrap(),
        namespaces: Vec::new(),
        children: Vec::new(),
        postgres: None,
    };
    // The directory is read by PostgreSQL's user (nobody) too.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(s.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    // Three namespaces, two veth pairs, private addresses on the veths only, no routes
    // beyond their /30s.
    let ns = |x: &str| format!("{PREFIX}{me}-{x}");
    let (nf, na, nb) = (ns("f"), ns("a"), ns("b"));
    for n in [&nf, &na, &nb] {
        ok(&mut ip(&["netns", "add", n]));
        s.namespaces.push(n.clone());
        ok(in_ns(n, "ip").args(["link", "set", "lo", "up"]));
    }
    let tag = me % 100_000;
    let subnet = |k: u32| format!("10.{}.{}", 200 + (me % 50), (tag % 60) * 4 + k);
    for (k, peer, addr_side) in [(0u32, &na, "a"), (1, &nb, "b")] {
        let (vf, vp) = (
            format!("fn{tag}f{addr_side}"),
            format!("fn{tag}{addr_side}"),
        );
        let net = subnet(k);
        ok(&mut ip(&[
            "link", "add", &vf, "netns", &nf, "type", "veth", "peer", "name", &vp, "netns", peer,
        ]));
        ok(in_ns(&nf, "ip").args(["addr", "add", &format!("{net}.1/30"), "dev", &vf]));
        ok(in_ns(&nf, "ip").args(["link", "set", &vf, "up"]));
        ok(in_ns(peer, "ip").args(["addr", "add", &format!("{net}.2/30"), "dev", &vp]));
        ok(in_ns(peer, "ip").args(["link", "set", &vp, "up"]));
    }
    // Nothing routes out: each namespace knows its veth's /30 and its own loopback only.
    for n in [&nf, &na, &nb] {
        let routes = ok(in_ns(n, "ip").args(["route", "show"]));
        assert!(!routes.contains("default"), "{n}: {routes}");
    }

    // PostgreSQL in the fleet's namespace, as nobody, on that namespace's loopback.
    let data = s.dir.path().join("pg");
    std::fs::create_dir_all(&data).unwrap();
    ok(Command::new("chown").arg("nobody:").arg(&data));
    std::fs::write(s.p("pw"), "netns-test-password\n").unwrap();
    ok(Command::new("chown").arg("nobody:").arg(s.p("pw")));
    ok(Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .arg(pg.join("initdb"))
        .arg("-D")
        .arg(data.join("data"))
        .args([
            "-U",
            "fleet",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
        ])
        .arg(format!("--pwfile={}", s.p("pw"))));
    s.postgres = Some((pg.clone(), data.join("data")));
    ok(in_ns(&nf, "runuser")
        .args(["-u", "nobody", "--"])
        .arg(pg.join("pg_ctl"))
        .arg("-D")
        .arg(data.join("data"))
        .arg("-l")
        .arg(data.join("server.log"))
        .args(["-w", "-t", "30", "-o"])
        .arg(format!(
            "-c listen_addresses=127.0.0.1 -c port=5432 -c unix_socket_directories={} -c fsync=off",
            data.display()
        ))
        .arg("start")
        .stdout(Stdio::null()));
    let db = "postgres://fleet:netns-test-password@127.0.0.1:5432/postgres";

    // The fleet service in its namespace, on every address there (its loopback and the two
    // veths), a port of the kernel's choice.
    let mut fleet = in_ns(&nf, FLEET);
    fleet
        .args([
            "serve",
            "--listen=0.0.0.0:0",
            "--allow-remote",
            "--tick-ms=100",
        ])
        .args(["--lease-ms=1500", "--heartbeat-ms=250", "--poll-ms=150"])
        .arg(format!("--state-dir={}", s.p("fleet-state")))
        .arg(format!("--db={db}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = fleet.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    s.children.push(child);
    let mut first = String::new();
    lines.read_line(&mut first).unwrap();
    std::thread::spawn(move || std::io::copy(&mut lines, &mut std::io::sink()));
    let port: u16 = first
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("the fleet said: {first}"));
    assert!(first.contains("0.0.0.0"), "{first}");
    let state = s.p("fleet-state");
    let controller_token = ok(Command::new(FLEET)
        .args(["token", "--role", "controller"])
        .arg(format!("--state-dir={state}")))
    .trim()
    .to_string();
    let fleet_cli = |args: &[&str]| -> Output {
        run(in_ns(&nf, FLEET)
            .args(args)
            .arg(format!("--url=http://127.0.0.1:{port}"))
            .arg(format!("--state-dir={state}")))
    };

    // Keys and images (nothing to do with the network).
    ok(Command::new(LAB)
        .args(["onu", "image", "keygen", "--out"])
        .arg(s.p("lab")));
    for (v, manifest) in [("V1.0", false), ("V2.0", true)] {
        let mut c = Command::new(LAB);
        c.args([
            "onu",
            "image",
            "build",
            "--model=LAB-ONU-1",
            "--security-version=1",
        ])
        .arg(format!("--key={}", s.p("lab.key")))
        .arg(format!("--version={v}"))
        .arg("--size=6000")
        .arg(format!("--out={}", s.p(&format!("{v}.img"))));
        if manifest {
            c.arg(format!("--manifest={}", s.p("V2.0.json")));
        }
        ok(&mut c);
    }

    // An OLT in each of the two other namespaces: its ONUs on that namespace's loopback, its
    // controller talking to the fleet over its veth.
    for (k, (n, olt, first_id)) in [(&na, "olt-a", 1u16), (&nb, "olt-b", 11)]
        .into_iter()
        .enumerate()
    {
        let mut onus = in_ns(n, LAB);
        onus.args([
            "onu",
            "run",
            "--supervise",
            "--count=4",
            "--busy-ms=100",
            "--reboot-ms=100",
        ])
        .arg(format!("--onu-id={first_id}"))
        .args(["--listen=127.0.0.1:40001", "--olt=127.0.0.1:47001"])
        .arg("--group=239.255.0.1:47000")
        .arg(format!("--state-dir={}", s.p(&format!("onus-{olt}"))))
        .arg(format!("--public-key={}", s.p("lab.pub")))
        .arg(format!("--golden={}", s.p("V1.0.img")))
        .env("RUST_LOG", "error")
        .stderr(Stdio::null());
        s.spawn(onus);
        let mut ctl = in_ns(n, LAB);
        ctl.args([
            "olt",
            "worker",
            "--timeout-ms=500",
            "--retries=4",
            "--rescan-s=2",
        ])
        .arg(format!("--fleet=http://{}.1:{port}", subnet(k as u32)))
        .arg(format!("--olt-id={olt}"))
        .arg(format!("--controller={olt}-ctl"))
        .args(["--listen=127.0.0.1:47001"])
        .arg(format!(
            "--onus=1/{first_id}-{}@127.0.0.1:40001",
            first_id + 3
        ))
        .arg("--group=1/239.255.0.1:47000")
        .arg(format!("--cache-dir={}", s.p(&format!("cache-{olt}"))))
        .env("FLEET_TOKEN", &controller_token)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null());
        s.spawn(ctl);
    }

    // Both OLTs' ONUs reach the inventory, over the veths.
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let out = fleet_cli(&["inventory", "--json"]);
        let n = serde_json::from_slice::<Value>(&out.stdout)
            .ok()
            .and_then(|v| v["onus"].as_array().map(Vec::len))
            .unwrap_or(0);
        if n == 8 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{n} of 8 ONUs in the inventory after 45 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // A campaign across them: a canary on each OLT, then the rest.
    let out = fleet_cli(&[
        "package",
        "add",
        &format!("--image={}", s.p("V2.0.img")),
        &format!("--manifest={}", s.p("V2.0.json")),
        "--id=lab-V2.0",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = fleet_cli(&[
        "campaign",
        "create",
        "--name=across",
        "--package=lab-V2.0",
        "--canary=25",
        "--groups=1",
        "--health-settle-ms=200",
        "--start",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let out = fleet_cli(&["campaign", "wait", &id, "--timeout-s=90"]);
    let shown = fleet_cli(&["campaign", "show", &id, "--json"]);
    let d: Value = serde_json::from_slice(&shown.stdout).unwrap_or(Value::Null);
    assert!(
        out.status.success(),
        "the campaign did not complete: {}{}\n{d:#}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(d["campaign"]["state"], "completed", "{d:#}");
    let results = d["results"].as_array().unwrap();
    assert_eq!(results.len(), 8);
    for r in results {
        assert_eq!(r["result"], "upgraded", "{r}");
        let olt = r["olt"].as_str().unwrap();
        assert_eq!(r["controller"], format!("{olt}-ctl"), "{r}");
    }
    let store = fleet_cli(&["status", "--json"]);
    let store: Value = serde_json::from_slice(&store.stdout).unwrap();
    assert_eq!(store["database"], "postgres", "{store}");

    // The controllers' traffic went over the veths: each peer end carried bytes both ways.
    for (n, side) in [(&na, "a"), (&nb, "b")] {
        let dev = format!("fn{tag}{side}");
        let count = |what: &str| -> u64 {
            ok(in_ns(n, "cat").arg(format!("/sys/class/net/{dev}/statistics/{what}")))
                .trim()
                .parse()
                .unwrap()
        };
        let (rx, tx) = (count("rx_bytes"), count("tx_bytes"));
        assert!(rx > 10_000 && tx > 1_000, "{dev}: rx {rx} tx {tx}");
    }

    // Every ONU's flash, read offline: V2.0 committed and running.
    s.children.retain_mut(|c| {
        let _ = c.kill();
        let _ = c.wait();
        false
    });
    std::thread::sleep(Duration::from_millis(300));
    for (olt, first) in [("olt-a", 1), ("olt-b", 11)] {
        for id in first..first + 4 {
            let out = ok(Command::new(LAB)
                .args(["onu", "status", "--json"])
                .arg(format!(
                    "--state-dir={}/onu-{id}",
                    s.p(&format!("onus-{olt}"))
                ))
                .arg(format!("--public-key={}", s.p("lab.pub"))));
            let v: Value = serde_json::from_str(&out).unwrap();
            let committed = v["slots"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["committed"] == true)
                .map(|x| x["version"].clone());
            assert_eq!(committed, Some(Value::from("V2.0")), "{olt} ONU {id}: {v}");
        }
    }
    let names: Vec<String> = s.namespaces.clone();
    drop(s);
    let left = ok(&mut ip(&["netns", "list"]));
    for n in &names {
        assert!(!left.contains(n.as_str()), "{n} was not deleted: {left}");
    }
    eprintln!(
        "the fleet across three namespaces in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
