//! What a run leaves behind, however it ends: nothing.
//!
//! Three ways a runner ends, and what takes care of each:
//!
//! - **It returns** (passed, failed, an error): every child's handle ([`Child`]) kills it when
//!   dropped, and the working directory ([`TempWorkDir`]) is removed when dropped.
//! - **A signal** (SIGINT, SIGTERM, SIGHUP): [`stop_on_signals`] takes the three on a thread
//!   of its own (with its own tokio runtime), so that one is acted on at once whatever the main
//!   thread is doing (building a 64 MiB image, a rogue sender's 100000 frames, starting 128
//!   ONUs). That thread kills every child's process group, waits until they are gone, removes
//!   the temporary working directories of this process and exits with 128 + the signal's
//!   number (130, 143, 129).
//! - **SIGKILL** (or a crash): nothing in the runner runs. Every child asked the kernel at its
//!   start to get SIGKILL when the runner ends ([`die_with_parent`], `PR_SET_PDEATHSIG`), and
//!   the working directory is left: the next run removes it ([`sweep_once`], called by every
//!   run before it makes or takes its working directory, removes once per process the
//!   directories whose runner is gone).
//!
//! The children: every ONU and OLT process of a run is started by [`spawn`], in a process
//! group of its own (a terminal's Ctrl-C reaches the runner alone, which stops them; a signal
//! to the group reaches whatever a child started), and recorded while it may run, which is
//! what the signal thread kills. The tool's command line starts with [`PARENT_FLAG`] (see
//! [`parent_arg`]), which the child's `main` strips before it runs the tool.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that started the child ends, not the process.
//! The children are started from the thread that polls [`super::run`]: the runner's tokio
//! runtime is current-thread (`cli::runtime`), so that is the main thread, which lasts as long
//! as the process. Do not start children from `spawn_blocking` or a thread that ends first.
//!
//! The working directories: `$TMPDIR/scenario-PID-XXXXXX`, PID the runner's, each with a
//! marker file ([`MARKER`]) holding the runner's PID and its start time (from `/proc`, so
//! that a PID used again by another process does not keep a directory alive). A directory is
//! swept only when its marker names a process that is gone, it is a real directory (not a
//! link) and it belongs to this user; a directory without a marker (one being made, or not
//! ours) is left alone.

use std::collections::BTreeSet;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// The option that makes a child of the runner ask for SIGKILL when the runner ends:
/// `--die-with-parent=PID`, first on the child's command line (before the tool's name).
pub const PARENT_FLAG: &str = "--die-with-parent";

/// The file in each temporary working directory that names its runner: `PID START\n`.
pub const MARKER: &str = ".scenario-runner";

/// The prefix of every temporary working directory: `scenario-PID-`.
const PREFIX: &str = "scenario-";

/// The children that may still run, and whether the runner is stopping (then no new one).
struct Registry {
    /// The PIDs (each also its process group) of the children not reaped yet.
    children: BTreeSet<u32>,
    /// `--keep` directories in use, named when a signal ends the run.
    kept: Vec<PathBuf>,
    /// A signal came: no child is started any more.
    stopping: bool,
}

/// One per process: signals are.
static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    children: BTreeSet::new(),
    kept: Vec::new(),
    stopping: false,
});

fn registry() -> MutexGuard<'static, Registry> {
    // A panic while it was held leaves nothing half-done in it: carry on.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// `--die-with-parent=PID` for this process's children.
pub(super) fn parent_arg() -> String {
    format!("{PARENT_FLAG}={}", std::process::id())
}

/// Makes this process get SIGKILL when its parent ends (the child's side of [`PARENT_FLAG`]).
/// False when `parent` has already ended (this process was re-parented before it could ask):
/// the caller exits then.
pub fn die_with_parent(parent: u32) -> bool {
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL) {
        eprintln!("scenario: cannot ask for a signal when the runner ends: {e}");
    }
    // Asked after the request: a parent that ended before it is seen here.
    u32::try_from(nix::unistd::getppid().as_raw()) == Ok(parent)
}

/// A child process of a run: in its own process group, recorded while it may run, killed
/// (SIGKILL) when dropped.
pub(super) struct Child {
    inner: tokio::process::Child,
    /// Its PID (and process group) until it is reaped.
    pid: Option<u32>,
}

/// Starts `cmd` as a child of the run (its command line already starts with
/// [`parent_arg`]); refused once a signal is stopping the runner.
pub(super) fn spawn(cmd: &mut tokio::process::Command) -> io::Result<Child> {
    cmd.process_group(0).kill_on_drop(true);
    let mut reg = registry();
    if reg.stopping {
        return Err(io::Error::other("the runner is stopping"));
    }
    let inner = cmd.spawn()?;
    let pid = inner.id();
    reg.children.extend(pid);
    Ok(Child { inner, pid })
}

impl Child {
    /// Its PID, until it has ended.
    pub(super) fn id(&self) -> Option<u32> {
        self.pid
    }

    /// Its standard error, when piped (once).
    pub(super) fn take_stderr(&mut self) -> Option<tokio::process::ChildStderr> {
        self.inner.stderr.take()
    }

    /// How it ended, once it has (it is then reaped and no longer recorded).
    pub(super) fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        // Reaped and forgotten under the lock: the signal thread never signals a PID that
        // another process may have taken since.
        let mut reg = registry();
        let status = self.inner.try_wait()?;
        if status.is_some() {
            self.forget(&mut reg);
        }
        Ok(status)
    }

    /// Waits until it ends.
    pub(super) async fn wait(&mut self) -> io::Result<ExitStatus> {
        let status = self.inner.wait().await?;
        self.forget(&mut registry());
        Ok(status)
    }

    /// Sends it SIGKILL, not waiting.
    pub(super) fn start_kill(&mut self) -> io::Result<()> {
        self.inner.start_kill()
    }

    /// Kills it (SIGKILL) and reaps it.
    pub(super) async fn kill(&mut self) -> io::Result<()> {
        let _ = self.inner.start_kill();
        self.wait().await.map(drop)
    }

    fn forget(&mut self, reg: &mut Registry) {
        if let Some(pid) = self.pid.take() {
            reg.children.remove(&pid);
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.pid.is_some() {
            // Not reaped: killed now (tokio reaps it later), and no longer ours to signal.
            let _ = self.inner.start_kill();
            self.forget(&mut registry());
        }
    }
}

/// A temporary working directory, `$TMPDIR/scenario-PID-XXXXXX` with its [`MARKER`]: removed
/// when dropped, by the signal thread on a signal, by a later run when this one was killed.
pub struct TempWorkDir(tempfile::TempDir);

/// Removes, the first time a process calls it, the working directories of `$TMPDIR` that
/// killed runs left (see [`sweep`]).
pub(super) fn sweep_once() {
    static SWEPT: Once = Once::new();
    SWEPT.call_once(|| sweep(&std::env::temp_dir()));
}

impl TempWorkDir {
    /// Makes one; the first one a process makes removes those that killed runs left.
    pub fn new() -> io::Result<TempWorkDir> {
        sweep_once();
        let parent = std::env::temp_dir();
        let me = std::process::id();
        let dir = tempfile::Builder::new()
            .prefix(&format!("{PREFIX}{me}-"))
            .tempdir_in(&parent)?;
        let start = start_time(me).unwrap_or(0);
        std::fs::write(dir.path().join(MARKER), format!("{me} {start}\n"))?;
        Ok(TempWorkDir(dir))
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// Records `dir` as a `--keep` directory in use (named, not removed, when a signal comes),
/// until the returned guard is dropped.
pub(super) fn keeping(dir: &Path) -> Keeping {
    registry().kept.push(dir.to_path_buf());
    Keeping(dir.to_path_buf())
}

/// A `--keep` directory in use: see [`keeping`].
pub(super) struct Keeping(PathBuf);

impl Keeping {
    /// Where it is.
    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Keeping {
    fn drop(&mut self) {
        let mut reg = registry();
        if let Some(i) = reg.kept.iter().position(|d| *d == self.0) {
            reg.kept.remove(i);
        }
    }
}

/// Process `pid`'s start time (clock ticks after boot, field 22 of `/proc/PID/stat`), while
/// it exists.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold anything: count after it.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Whether process `pid` is gone or a zombie (it holds no port, no file, no command line).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

/// The PID a directory entry's name gives, for `scenario-PID-XXXXXX`.
fn pid_in_name(name: &str) -> Option<u32> {
    let (pid, rest) = name.strip_prefix(PREFIX)?.split_once('-')?;
    (!rest.is_empty()).then_some(())?;
    pid.parse().ok()
}

/// A directory of `parent` that may be removed: `scenario-PID-*`, a directory (not a link),
/// this user's; its runner's PID.
fn candidate(entry: &std::fs::DirEntry, uid: u32) -> Option<(u32, PathBuf)> {
    let pid = pid_in_name(entry.file_name().to_str()?)?;
    let path = entry.path();
    let meta = std::fs::symlink_metadata(&path).ok()?;
    (meta.is_dir() && meta.uid() == uid).then_some((pid, path))
}

/// Removes the working directories of `parent` whose runner is gone (its marker names a PID
/// that no longer runs, or runs another process).
fn sweep(parent: &Path) {
    // Without /proc every runner would look gone: sweep nothing then.
    if start_time(std::process::id()).is_none() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    let uid = nix::unistd::getuid().as_raw();
    for entry in entries.flatten() {
        let Some((pid, path)) = candidate(&entry, uid) else {
            continue;
        };
        let Ok(marker) = std::fs::read_to_string(path.join(MARKER)) else {
            continue;
        };
        let mut words = marker.split_whitespace().map(str::parse::<u64>);
        let (Some(Ok(owner)), Some(Ok(start))) = (words.next(), words.next()) else {
            continue;
        };
        if owner == u64::from(pid) && start_time(pid) != Some(start) {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// Removes every working directory of this process in `parent` (marked or not: a directory
/// being made when the signal came has no marker yet), trying again while a file is still
/// being written into one.
fn remove_own(parent: &Path) {
    let me = std::process::id();
    let uid = nix::unistd::getuid().as_raw();
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        if let Some((pid, path)) = candidate(&entry, uid)
            && pid == me
        {
            for _ in 0..20 {
                match std::fs::remove_dir_all(&path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    _ => break,
                }
            }
        }
    }
}

/// Takes SIGINT, SIGTERM and SIGHUP on a thread of their own from now on (its own tokio
/// runtime: it answers whatever the main thread is doing). On the first, every child's group
/// is killed, this process's temporary working directories are removed and the process exits
/// with 128 + the signal's number; the main thread, at its next look at the children, waits
/// for that exit (it neither starts a child nor reports a run the signal cut short).
pub fn stop_on_signals() -> io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let (ready, installed) = std::sync::mpsc::channel::<io::Result<()>>();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => return drop(ready.send(Err(e))),
            };
            runtime.block_on(async move {
                let taken = (|| {
                    io::Result::Ok((
                        signal(SignalKind::interrupt())?,
                        signal(SignalKind::terminate())?,
                        signal(SignalKind::hangup())?,
                    ))
                })();
                let (mut int, mut term, mut hup) = match taken {
                    Ok(streams) => streams,
                    Err(e) => return drop(ready.send(Err(e))),
                };
                let _ = ready.send(Ok(()));
                let sig = tokio::select! {
                    _ = int.recv() => Signal::SIGINT,
                    _ = term.recv() => Signal::SIGTERM,
                    _ = hup.recv() => Signal::SIGHUP,
                };
                stop_and_exit(sig)
            })
        })?;
    installed
        .recv()
        .map_err(|_| io::Error::other("the signal thread ended"))?
}

/// Kills every child's group, waits (at most 3 s) until they are gone, removes this
/// process's temporary working directories, says so and exits with 128 + `signal`'s number;
/// the children's record stays locked until then, so that the main thread does no more.
fn stop_and_exit(signal: Signal) -> ! {
    let mut reg = registry();
    reg.stopping = true;
    for &pid in &reg.children {
        if let Ok(p) = i32::try_from(pid) {
            let _ = killpg(Pid::from_raw(p), Signal::SIGKILL);
            let _ = nix::sys::signal::kill(Pid::from_raw(p), Signal::SIGKILL);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while !reg.children.iter().all(|&pid| gone(pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    remove_own(&std::env::temp_dir());
    // (A soak keeps its cases in temporary working directories: those are gone now.)
    let kept: Vec<&PathBuf> = reg.kept.iter().filter(|d| d.exists()).collect();
    let dir = match kept.as_slice() {
        [] => "the working directory removed".to_string(),
        dirs => {
            let d: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
            format!("the working directory {} kept (--keep)", d.join(", "))
        }
    };
    eprintln!(
        "scenario: interrupted by {}; every process stopped, {dir}",
        signal.as_str()
    );
    std::process::exit(128 + signal as i32)
}

/// Waits, when a signal is stopping the runner, until it has exited (a run it cut short
/// returns an error the user is not to see); returns at once otherwise.
pub fn unless_stopping() {
    drop(registry());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_name_gives_its_runners_pid() {
        assert_eq!(pid_in_name("scenario-123-aBc9"), Some(123));
        assert_eq!(pid_in_name("scenario-123-"), None);
        assert_eq!(pid_in_name("scenario-aBc9"), None);
        assert_eq!(pid_in_name("soak-123-x"), None);
    }

    #[test]
    fn this_process_has_a_start_time_and_is_not_gone() {
        let me = std::process::id();
        assert!(start_time(me).is_some());
        assert!(!gone(me));
    }

    #[test]
    fn a_sweep_removes_the_directories_of_gone_runners_only() {
        let parent = tempfile::tempdir().unwrap();
        let me = std::process::id();
        let make = |name: &str, marker: Option<String>| {
            let d = parent.path().join(name);
            std::fs::create_dir(&d).unwrap();
            if let Some(m) = marker {
                std::fs::write(d.join(MARKER), m).unwrap();
            }
            d
        };
        let start = start_time(me).unwrap();
        // PID 1 runs, but started at another time than the marker says: the PID was reused.
        let reused = make("scenario-1-aaaa", Some(format!("1 {}\n", u64::MAX)));
        let alive = make(
            &format!("scenario-{me}-bbbb"),
            Some(format!("{me} {start}\n")),
        );
        let unmarked = make("scenario-1-cccc", None);
        let other = make("scenario-dddd", Some("1 0\n".into()));
        let lying = make(&format!("scenario-{me}-eeee"), Some("1 0\n".into()));
        sweep(parent.path());
        assert!(!reused.exists());
        for d in [&alive, &unmarked, &other, &lying] {
            assert!(d.exists(), "{} kept", d.display());
        }
    }
}
