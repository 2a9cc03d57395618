//! Bad input from the user's side (the security review "hostile peers and bad input"): values a
//! scenario file or a command line may give out of their range are refused with exit code 2
//! and one line naming the file and line (or the flag), the key and the allowed range, never a
//! panic; a run whose OLT fails anyway says what the OLT said; the time limit is the file's.

use std::path::Path;
use std::process::Output;

harness::tools!();

/// A one-ONU scenario with `extra` lines in the tables they name (written after the table
/// header: `("[olt]", "retries = 255")`).
fn scenario_text(extra: &[(&str, &str)]) -> String {
    let mut tables: Vec<(String, Vec<String>)> =
        ["", "[topology]\nonus = 1", "[image]\nversion = \"V2.0\""]
            .iter()
            .map(|t| (t.to_string(), Vec::new()))
            .collect();
    for (table, line) in extra {
        match tables
            .iter_mut()
            .find(|(t, _)| t.lines().next() == Some(*table))
        {
            Some((_, lines)) => lines.push(line.to_string()),
            None if table.is_empty() => tables[0].1.push(line.to_string()),
            None => tables.push((table.to_string(), vec![line.to_string()])),
        }
    }
    let mut text = "name = \"bounds\"\n".to_string();
    for (table, lines) in tables {
        if !table.is_empty() {
            text += &table;
            text += "\n";
        }
        for l in lines {
            text += &l;
            text += "\n";
        }
    }
    text
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let f = dir.join(name);
    std::fs::write(&f, text).unwrap();
    f
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit code 2 and one line on standard error that names each of `words`.
fn refused_in_one_line(out: &Output, words: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "exit code 2: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    for w in words {
        assert!(err.contains(w), "should name {w:?}: {err}");
    }
    for rust in ["Some(", "None", "Duration", "panicked", "Error {", "Os {"] {
        assert!(!err.contains(rust), "no Rust in {err}");
    }
}

/// Every value the review found `scenario check` accepting and `scenario run` (or a process it
/// starts) refusing or panicking on, with the key and the range the refusal must name.
const OUT_OF_RANGE: &[(&str, &str, &str, &str)] = &[
    (
        "[[faults]]\nkind = \"sigkill\"\nonus = \"1\"",
        "at_s = -5",
        "faults.at_s = -5",
        "0 to 86400 s",
    ),
    (
        "[[faults]]\nkind = \"silent\"\nonus = \"1\"\nat_s = 1",
        "duration_s = -1",
        "faults.duration_s = -1",
        "0.001 to 3600 s",
    ),
    (
        "[[faults]]\nkind = \"silent\"\nonus = \"1\"\nat_s = 1",
        "duration_s = 1e300",
        "faults.duration_s",
        "0.001 to 3600 s",
    ),
    (
        "[olt.campaign]",
        "start_in_s = 18446744073709551615",
        "olt.campaign.start_in_s = 18446744073709551615",
        "0 to 86400 s",
    ),
    (
        "[[topology.groups]]\nonus = \"1\"",
        "max_window = 0",
        "topology.groups.max_window = 0",
        "1 to 256 sections",
    ),
    (
        "[[topology.groups]]\nonus = \"1\"",
        "max_window = 1000",
        "topology.groups.max_window = 1000",
        "1 to 256 sections",
    ),
    (
        "[[faults]]\nkind = \"power-loss\"\nonus = \"1\"\npoint = \"during-busy\"",
        "occurrence = 0",
        "faults.occurrence = 0",
        "1 to 4294967295",
    ),
    ("[olt]", "retries = 255", "olt.retries = 255", "0 to 50"),
    (
        "[olt]",
        "timeout_ms = 0",
        "olt.timeout_ms = 0",
        "1 to 600000 ms",
    ),
    (
        "[olt.campaign]",
        "pace = 0",
        "olt.campaign.pace = 0",
        "1 to 4294967295",
    ),
    (
        "[olt.campaign]",
        "canary = 200",
        "olt.campaign.canary = 200",
        "0 to 100 percent",
    ),
    (
        "[image]",
        "size = 4294967296",
        "image.size = 4294967296",
        "1 to 67108672 bytes",
    ),
    ("", "time_limit_s = 0", "time_limit_s = 0", "1 to 86400 s"),
];

#[test]
fn scenario_check_refuses_every_value_out_of_range_naming_file_line_key_and_range() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (table, line, key, range)) in OUT_OF_RANGE.iter().enumerate() {
        let text = scenario_text(&[(table, line)]);
        let f = write(dir.path(), &format!("bad-{i}.toml"), &text);
        let out = scenario().arg("check").arg(&f).output().unwrap();
        let want_line = format!(
            "line {}",
            text.lines().position(|l| l == *line).unwrap() + 1
        );
        refused_in_one_line(&out, &[&format!("bad-{i}.toml"), &want_line, key, range]);
    }
    // And a good file still passes.
    let good = write(dir.path(), "good.toml", &scenario_text(&[]));
    let out = scenario().arg("check").arg(&good).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn scenario_run_refuses_them_before_starting_anything() {
    let dir = tempfile::tempdir().unwrap();
    // The ones `scenario run` panicked on (exit 101), and one the OLT refused.
    for i in [0, 1, 2, 3, 7] {
        let (table, line, key, range) = OUT_OF_RANGE[i];
        let f = write(
            dir.path(),
            &format!("bad-{i}.toml"),
            &scenario_text(&[(table, line)]),
        );
        let out = scenario().arg("run").arg(&f).output().unwrap();
        refused_in_one_line(&out, &[&format!("bad-{i}.toml"), key, range]);
    }
}

#[test]
fn a_fault_after_the_time_limit_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = scenario_text(&[
        ("", "time_limit_s = 20"),
        ("[[faults]]\nkind = \"sigkill\"\nonus = \"1\"", "at_s = 30"),
    ]);
    let f = write(dir.path(), "late.toml", &text);
    let out = scenario().arg("check").arg(&f).output().unwrap();
    let line = text.lines().position(|l| l == "at_s = 30").unwrap() + 1;
    refused_in_one_line(
        &out,
        &[
            &format!("late.toml: line {line}"),
            "faults.at_s = 30",
            "time_limit_s = 20",
        ],
    );
}

#[test]
fn when_the_olt_fails_the_summary_says_what_it_said() {
    // A working directory kept from elsewhere, whose journal is not one, carried on on
    // purpose (--reuse): the OLT refuses it.
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("work");
    std::fs::create_dir_all(&keep).unwrap();
    std::fs::write(keep.join("journal.json"), "not a journal\n").unwrap();
    let f = write(dir.path(), "one.toml", &scenario_text(&[]));
    let out = scenario()
        .arg("run")
        .arg(&f)
        .arg(format!("--keep={}", keep.display()))
        .arg("--reuse")
        .arg("--port=37000")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}\n{}", stderr(&out));
    let failed = text
        .lines()
        .find(|l| l.contains("[FAILED] the OLT wrote a report"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        failed.contains("the OLT exited with code 2: olt: ")
            && failed.contains("journal.json is not a campaign journal"),
        "the OLT's own line: {failed}"
    );
}

#[test]
fn the_time_limit_is_the_files_and_counts_from_the_olts_start() {
    // End software download answers busy for 4 s: the rollout cannot end within 2 s (the
    // limit was silently raised to 10 s, in which it would have ended).
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "slow.toml",
        &scenario_text(&[("", "time_limit_s = 2"), ("[topology]", "busy_ms = 4000")]),
    );
    let started = std::time::Instant::now();
    let out = scenario()
        .arg("run")
        .arg(&f)
        .arg("--port=38000")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the rollout did not end within time_limit_s = 2 s"),
        "{err}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "stopped at its limit"
    );
}

#[test]
fn olt_and_onu_refuse_port_0_and_the_broadcast_address() {
    let dir = tempfile::tempdir().unwrap();
    let img = write(dir.path(), "x.img", "not an image");
    let rollout = |args: &[&str]| {
        olt()
            .args(["rollout", "--image"])
            .arg(&img)
            .args(args)
            .output()
            .unwrap()
    };
    refused_in_one_line(
        &rollout(&["--onus", "1-4@127.0.0.1:0"]),
        &["--onus", "port 0", "1 to 65535"],
    );
    refused_in_one_line(
        &rollout(&["--onus", "1@127.255.255.255:40001"]),
        &["--onus", "broadcast address"],
    );
    refused_in_one_line(
        &rollout(&["--onus", "1@127.0.0.1:40001", "--listen", "127.0.0.1:0"]),
        &["--listen", "port 0"],
    );
    refused_in_one_line(
        &rollout(&["--onus", "1@127.0.0.1:40001", "--group", "239.255.0.1:0"]),
        &["--group", "port 0"],
    );
    // A start time that is none: a usage error, as every other flag's (it was exit 1).
    refused_in_one_line(
        &rollout(&["--onus", "1@127.0.0.1:40001", "--start-at", "tomorrow"]),
        &["--start-at", "RFC 3339", "now"],
    );
    let run = |args: &[&str]| {
        onu()
            .args(["run", "--state-dir"])
            .arg(dir.path().join("flash"))
            .args(["--public-key"])
            .arg(&img)
            .args(args)
            .output()
            .unwrap()
    };
    refused_in_one_line(
        &run(&["--olt", "127.255.255.255:47001"]),
        &["--olt", "broadcast address"],
    );
    refused_in_one_line(&run(&["--listen", "127.0.0.1:0"]), &["--listen", "port 0"]);
}

#[test]
fn olt_refuses_an_image_g988_cannot_carry() {
    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("huge.img");
    // Sparse: 4 GiB and one byte, no disk used.
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(u64::from(u32::MAX) + 1)
        .unwrap();
    let rollout = |image: &Path| {
        olt()
            .args(["rollout", "--onus", "1@127.0.0.1:40001", "--image"])
            .arg(image)
            .output()
            .unwrap()
    };
    refused_in_one_line(
        &rollout(&huge),
        &["--image", "4294967296 bytes", "32 bits", "4294967295"],
    );
    refused_in_one_line(&rollout(Path::new("/dev/zero")), &["--image", "not a file"]);
    // olt conform onu takes its --image the same way.
    let conform = olt()
        .args([
            "conform",
            "onu",
            "--target",
            "127.0.0.1:40001",
            "--image",
            "/dev/zero",
        ])
        .output()
        .unwrap();
    refused_in_one_line(&conform, &["--image", "not a file"]);
}
