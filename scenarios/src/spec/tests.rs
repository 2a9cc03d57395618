//! The scenario file's parser: defaults, errors that name the line, the key and the allowed
//! values, and no panic on any text.
use super::*;

const MINIMAL: &str = r#"
name = "t"
[topology]
onus = 4
[image]
version = "V2.0"
"#;

#[test]
fn a_minimal_scenario_takes_the_defaults() {
    let s = parse(MINIMAL).unwrap();
    assert_eq!(s.topology.onus, OnuCount(4));
    assert_eq!(s.olt.mode, Mode::Multicast);
    assert_eq!(s.image.size, 65536);
}

#[test]
fn errors_name_the_line_the_key_and_the_allowed_values() {
    let e = parse(&MINIMAL.replace("[image]", "[olt]\nmode = \"broadcast\"\n[image]")).unwrap_err();
    assert!(
        e.contains("line 6, key `mode`") && e.contains("multicast") && e.contains("unicast"),
        "{e}"
    );
    let e = parse(&MINIMAL.replace("onus = 4", "onus = 400")).unwrap_err();
    assert!(
        e.contains("line 4, key `onus`") && e.contains("1 to 128"),
        "{e}"
    );
    let e = parse(&MINIMAL.replace("onus = 4", "onus = 4\ncolour = 1")).unwrap_err();
    assert!(e.contains("colour") && e.contains("line 5"), "{e}");
    let e = parse(&format!(
        "{MINIMAL}[[faults]]\nkind = \"power-loss\"\nonus = \"9\"\npoint = \"mid-section-write\"\n"
    ))
    .unwrap_err();
    assert!(e.contains("ONU 9 does not exist"), "{e}");
    let e = parse(&format!(
        "{MINIMAL}[[faults]]\nkind = \"power-loss\"\nonus = \"1\"\npoint = \"somewhere\"\n"
    ))
    .unwrap_err();
    assert!(
        e.contains("mid-section-write") && e.contains("line 10, key `point`"),
        "{e}"
    );
    let e = parse(&format!(
        "{MINIMAL}[[faults]]\nkind = \"sigkill\"\nonus = \"1\"\n"
    ))
    .unwrap_err();
    assert!(e.contains("at_s") && e.contains("line 8"), "{e}");
    let e = parse(&format!(
        "{MINIMAL}[[faults]]\nkind = \"sigkill\"\nonus = \"1\"\non = \"lunch\"\n"
    ))
    .unwrap_err();
    assert!(
        e.contains("window:N") && e.contains("line 10, key `on`"),
        "{e}"
    );
}

#[test]
fn points_and_paths_are_spelled_as_their_one_definition() {
    for p in FaultPoint::ALL {
        let s = parse(&format!(
            "{MINIMAL}[[faults]]\nkind = \"power-loss\"\nonus = \"1\"\npoint = \"{p}\"\n"
        ))
        .unwrap();
        assert_eq!(s.faults[0].point, Some(p));
    }
    let linked = |on: &str| {
        MINIMAL.replace(
            "[image]",
            &format!(
                "[[topology.groups]]\nonus = \"1\"\nlink = {{ drop = 0.1, on = \"{on}\" }}\n[image]"
            ),
        )
    };
    for (on, want) in [
        ("both", Paths::Both),
        ("unicast", Paths::Unicast),
        ("multicast", Paths::Multicast),
    ] {
        let s = parse(&linked(on)).unwrap();
        assert_eq!(s.topology.groups[0].link.as_ref().unwrap().on, want);
    }
    let e = parse(&linked("uplink")).unwrap_err();
    assert!(
        e.contains("line 7, key `link`")
            && e.contains("both")
            && e.contains("unicast")
            && e.contains("multicast"),
        "{e}"
    );
}

#[test]
fn onu_sets_parse() {
    assert_eq!(parse_set("all"), Ok(OnuSet::All));
    assert_eq!(
        parse_set("1-3,7").unwrap().resolve(128),
        [1, 2, 3, 7].into_iter().collect()
    );
    assert!(parse_set("0").is_err());
    assert!(parse_set("4-2").is_err());
    assert!(parse_set("1-200").is_err());
}

/// `MINIMAL` with `line` added to `table` (`""`: at the top).
fn with(table: &str, line: &str) -> String {
    match table {
        "" => format!("{line}\n{MINIMAL}"),
        "[image]" => MINIMAL.replace("[image]\n", &format!("[image]\n{line}\n")),
        "[topology]" => MINIMAL.replace("[topology]\n", &format!("[topology]\n{line}\n")),
        t => format!("{MINIMAL}{t}\n{line}\n"),
    }
}

/// The message of a file that must not parse, checked to name the line, the key and the range.
fn refused(text: &str, key: &str, range: &str) -> String {
    let e = parse(text).expect_err(text);
    assert!(e.starts_with("line "), "names the line: {e}");
    assert!(e.contains(key), "names {key}: {e}");
    assert!(e.contains(range), "names the range {range}: {e}");
    assert_eq!(e.lines().count(), 1, "one line: {e}");
    assert!(!e.contains("Some(") && !e.contains("Duration"), "{e}");
    e
}

#[test]
fn every_duration_size_and_count_is_refused_out_of_its_range() {
    let fault = |kind: &str, more: &str| {
        format!("{MINIMAL}[[faults]]\nkind = \"{kind}\"\nonus = \"1\"\n{more}\n")
    };
    // What `scenario run` panicked on.
    refused(
        &fault("sigkill", "at_s = -5"),
        "faults.at_s = -5",
        "0 to 86400 s",
    );
    refused(
        &fault("silent", "at_s = 1\nduration_s = -1"),
        "faults.duration_s = -1",
        "0.001 to 3600 s",
    );
    refused(
        &fault("silent", "at_s = 1\nduration_s = 1e300"),
        "faults.duration_s",
        "0.001 to 3600 s",
    );
    refused(
        &fault("silent", "at_s = nan\nduration_s = 1"),
        "faults.at_s = NaN",
        "0 to 86400",
    );
    refused(
        &with("[olt.campaign]", "start_in_s = 18446744073709551615"),
        "olt.campaign.start_in_s = 18446744073709551615",
        "0 to 86400 s",
    );
    // What the processes refused, and the reason was lost.
    for (table, line, key, range) in [
        (
            "[[topology.groups]]\nonus = \"1\"",
            "max_window = 0",
            "topology.groups.max_window = 0",
            "1 to 256 sections",
        ),
        (
            "[[topology.groups]]\nonus = \"1\"",
            "max_window = 1000",
            "max_window = 1000",
            "1 to 256 sections",
        ),
        ("[olt]", "retries = 255", "olt.retries = 255", "0 to 50"),
        (
            "[olt]",
            "timeout_ms = 0",
            "olt.timeout_ms = 0",
            "1 to 600000 ms",
        ),
        ("[olt]", "window = 0", "olt.window = 0", "1 to 256 sections"),
        (
            "[olt]",
            "activate_flags = 3",
            "olt.activate_flags = 3",
            "0 to 2 (0 unconditionally",
        ),
        (
            "[olt]",
            "activate_defer_s = 0",
            "olt.activate_defer_s = 0",
            "1 to 86400 s",
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
            "[olt.campaign]",
            "kill_threshold = 101",
            "kill_threshold = 101",
            "0 to 100 percent",
        ),
        (
            "[olt.campaign]",
            "health_settle_ms = -1",
            "health_settle_ms = -1",
            "0 to 3600000 ms",
        ),
        (
            "[image]",
            "size = 4294967296",
            "image.size = 4294967296",
            "1 to 67108672 bytes",
        ),
        (
            "[image]",
            "size = 67108673",
            "image.size = 67108673",
            "1 to 67108672 bytes",
        ),
        ("[image]", "size = 0", "image.size = 0", "1 to 67108672"),
        (
            "[image]",
            "rollout_percent = 101",
            "image.rollout_percent",
            "0 to 100 percent",
        ),
        (
            "[image]",
            "security_version = 4294967296",
            "image.security_version",
            "0 to 4294967295",
        ),
        (
            "[topology]",
            "busy_ms = 60001",
            "topology.busy_ms = 60001",
            "0 to 60000 ms",
        ),
        (
            "[topology]",
            "reboot_ms = -1",
            "topology.reboot_ms = -1",
            "0 to 60000 ms",
        ),
        ("", "time_limit_s = 0", "time_limit_s = 0", "1 to 86400 s"),
        (
            "",
            "time_limit_s = 2.5",
            "time_limit_s = 2.5 is not a whole number",
            "1 to 86400 s",
        ),
        (
            "[expect]",
            "upgraded = 5",
            "expect.upgraded = 5",
            "0 to 4 ONUs",
        ),
        (
            "[expect]",
            "max_group_downloads = -0.5",
            "expect.max_group_downloads",
            "0 to 1000 downloads",
        ),
    ] {
        refused(&with(table, line), key, range);
    }
    refused(
        &fault("power-loss", "point = \"during-busy\"\noccurrence = 0"),
        "faults.occurrence = 0",
        "1 to 4294967295",
    );
    refused(
        &format!("{MINIMAL}[[faults]]\nkind = \"rogue-sender\"\nat_s = 1\nforged = 100001\n"),
        "faults.forged = 100001",
        "0 to 100000 frames",
    );
    // A string where a number goes says what number.
    refused(
        &with("[olt]", "timeout_ms = \"soon\""),
        "timeout_ms",
        "a whole number from 1 to 600000 ms",
    );
    // Names and versions: what an image header and the Software image ME hold.
    refused(
        &with("[topology]", "version = \"V1.0.0.0.0.0.0.0\""),
        "topology.version",
        "1 to 14 bytes",
    );
    refused(
        &with("[topology]", "model = \"\""),
        "topology.model",
        "1 to 32 bytes",
    );
    refused(
        &MINIMAL.replace("\"V2.0\"", "\"V2.0 is far too long\""),
        "image.version",
        "1 to 14 bytes",
    );
    let e = parse(&with("[topology]", "model = \"LAB\\nONU\"")).unwrap_err();
    assert!(
        e.contains("topology.model") && e.contains("control character"),
        "{e}"
    );
}

#[test]
fn the_edges_of_every_range_are_accepted() {
    let s = parse(&format!(
        "time_limit_s = 86400\n{}[olt]\nwindow = 256\ntimeout_ms = 600000\nretries = 50\n\
         activate_flags = 2\nactivate_defer_s = 86400\n\
         [olt.campaign]\ncanary = 100\nkill_threshold = 0\nhealth_settle_ms = 3600000\npace = 4294967295\nstart_in_s = 86399\n\
         [[faults]]\nkind = \"silent\"\nonus = \"1\"\nat_s = 86399.5\nduration_s = 3600\n\
         [[faults]]\nkind = \"power-loss\"\nonus = \"1\"\npoint = \"during-busy\"\noccurrence = 4294967295\n",
        MINIMAL.replace("version = \"V2.0\"", "version = \"V2.0\"\nsize = 67108672")
    ))
    .unwrap();
    assert_eq!(s.image.size, 67_108_672);
    assert_eq!(s.faults[0].at(), Some(Duration::from_millis(86_399_500)));
    assert_eq!(s.faults[0].duration(), Duration::from_secs(3600));
    assert_eq!(s.faults[1].occurrence, Some(u32::MAX));
    // Whole numbers are numbers of seconds too.
    let s = parse(&format!(
        "{MINIMAL}[[faults]]\nkind = \"sigkill\"\nonus = \"1\"\nat_s = 2\n"
    ))
    .unwrap();
    assert_eq!(s.faults[0].at(), Some(Duration::from_secs(2)));
}

#[test]
fn times_after_the_time_limit_are_refused_with_the_line_of_their_fault() {
    let e = parse(&with("[olt.campaign]", "start_in_s = 300")).unwrap_err();
    assert!(
        e.contains("olt.campaign.start_in_s = 300")
            && e.contains("time_limit_s = 300")
            && e.contains("0 to 299"),
        "{e}"
    );
    let text = format!(
        "time_limit_s = 20\n{MINIMAL}[[faults]]\nkind = \"sigkill\"\nonus = \"1\"\nat_s = 1\n\
         [[faults]]\nkind = \"sigkill\"\nonus = \"2\"\nat_s = 25\n"
    );
    let e = parse(&text).unwrap_err();
    assert!(
        e.starts_with("line 15: faults.at_s = 25") && e.contains("time_limit_s = 20"),
        "the second fault's line: {e}"
    );
    // The second fault's own line when it lacks a key, and its kind in the file's words.
    let e = parse(&format!(
        "{MINIMAL}[[faults]]\nkind = \"sigkill\"\nonus = \"1\"\nat_s = 1\n\
         [[faults]]\nkind = \"power-loss\"\n"
    ))
    .unwrap_err();
    assert!(
        e.starts_with("line 12: ") && e.contains("a power-loss fault needs `onus`"),
        "{e}"
    );
}

/// The library's scenario files, by name.
pub(crate) fn library() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && !p.ends_with("Cargo.toml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), text)
        })
        .collect();
    files.sort();
    assert!(files.len() >= 12, "the library: {files:?}");
    files
}

#[test]
fn every_library_scenario_parses() {
    for (name, text) in library() {
        parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// Values of every kind a key may be given, the edges of the ranges and past them.
fn any_value() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        (-2i64..300).prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:?}")),
        proptest::sample::select(vec![
            "18446744073709551615",
            "9223372036854775807",
            "-9223372036854775808",
            "4294967296",
            "67108673",
            "1e300",
            "-1e300",
            "nan",
            "inf",
            "-inf",
            "-0.0",
            "0",
            "1",
            "256",
            "257",
            "true",
            "[]",
            "{}",
            "[1, 2]",
            "{ drop = 2.0 }",
            "\"\"",
            "\"all\"",
            "\"rest\"",
            "\"1-128\"",
            "\"0-5\"",
            "\"5-1\"",
            "\"window:4294967296\"",
            "\"window:-1\"",
            "\"during-busy\"",
            "\"multicast\"",
            "1979-05-27T07:32:00Z",
        ])
        .prop_map(str::to_string),
        "\"[ -~]{0,20}\"",
    ]
}

/// Every key and table of the format.
const KEYS: &[&str] = &[
    "name",
    "seed",
    "time_limit_s",
    "explain",
    "diagram",
    "onus",
    "model",
    "version",
    "busy_ms",
    "reboot_ms",
    "voice_call",
    "max_window",
    "link",
    "drop",
    "on",
    "size",
    "security_version",
    "installed_security_version",
    "rollout_percent",
    "tampered",
    "mode",
    "window",
    "timeout_ms",
    "retries",
    "strict",
    "extended",
    "retry_failed",
    "activate_flags",
    "activate_defer_s",
    "campaign",
    "canary",
    "kill_threshold",
    "health_settle_ms",
    "pace",
    "start_in_s",
    "kind",
    "share",
    "at_s",
    "point",
    "occurrence",
    "duration_s",
    "forged",
    "corrupt",
    "upgraded",
    "failed",
    "outcome",
    "max_group_downloads",
    "result",
    "committed",
    "active",
    "[topology]",
    "[[topology.groups]]",
    "[image]",
    "[olt]",
    "[olt.campaign]",
    "[[faults]]",
    "[expect]",
    "[[expect.onus]]",
];

/// A library scenario with a few of its lines changed: a value replaced, a line deleted or
/// doubled, a key or table inserted, a random piece inserted.
pub(crate) fn mutated_library() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    use proptest::sample::Index;
    let files = library();
    let keys = proptest::sample::select(KEYS.to_vec());
    let edit = (any::<Index>(), 0u8..7, any_value(), "\\PC{0,6}", keys);
    (0..files.len(), proptest::collection::vec(edit, 1..5)).prop_map(move |(f, edits)| {
        let mut lines: Vec<String> = files[f].1.lines().map(str::to_string).collect();
        for (at, op, value, junk, key) in edits {
            if lines.is_empty() {
                break;
            }
            let i = at.index(lines.len());
            match op {
                0 | 1 => {
                    if let Some((key, _)) = lines[i].split_once('=') {
                        lines[i] = format!("{key}= {value}");
                    }
                }
                2 => {
                    lines.remove(i);
                }
                3 => {
                    let l = lines[i].clone();
                    lines.insert(i, l);
                }
                4 => {
                    // A key of the format where it may or may not belong, or a table.
                    let line = match key.strip_prefix('[') {
                        Some(_) => key.to_string(),
                        None => format!("{key} = {value}"),
                    };
                    lines.insert(i, line);
                }
                _ => {
                    let l = &mut lines[i];
                    let cut = at.index(l.len() + 1);
                    if l.is_char_boundary(cut) {
                        l.insert_str(cut, &junk);
                    }
                }
            }
        }
        lines.join("\n")
    })
}

/// A small scenario with a fault of any kind whose keys (and the time limit, the campaign's
/// start) take any value: the times and counts a runner turns into durations.
fn generated_fault() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    // Each key: absent, a value near its range (inside or just past), or any value.
    fn key(
        name: &'static str,
        near: BoxedStrategy<String>,
    ) -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            4 => Just(None),
            5 => near.prop_map(move |v| Some(format!("{name} = {v}"))),
            1 => any_value().prop_map(move |v| Some(format!("{name} = {v}"))),
        ]
    }
    let real = |lo: f64, hi: f64| (lo..hi).prop_map(|v| v.to_string()).boxed();
    let whole = |lo: i64, hi: i64| (lo..hi).prop_map(|v| v.to_string()).boxed();
    let kind = proptest::sample::select(vec![
        "sigkill",
        "silent",
        "power-loss",
        "olt-restart",
        "rogue-sender",
    ]);
    (
        kind,
        (
            key("at_s", real(-1.0, 400.0)),
            key("on", Just("\"window:2\"".to_string()).boxed()),
            key("duration_s", real(-0.5, 5000.0)),
            key("point", Just("\"after-activate\"".to_string()).boxed()),
            key("occurrence", whole(0, 5)),
            key("forged", whole(-1, 200_000)),
            key("corrupt", whole(-1, 200_000)),
            key("share", real(-0.1, 1.2)),
        ),
        key("time_limit_s", whole(-1, 400)),
        key("start_in_s", whole(-1, 400)),
    )
        .prop_map(|(kind, (a, b, c, d, e, f, g, h), limit, start)| {
            let mut t = limit.map(|l| l + "\n").unwrap_or_default();
            t += MINIMAL;
            if let Some(start) = start {
                t += &format!("[olt.campaign]\n{start}\n");
            }
            t += &format!("[[faults]]\nkind = \"{kind}\"\nonus = \"1-2\"\n");
            for line in [a, b, c, d, e, f, g, h].into_iter().flatten() {
                t += &line;
                t += "\n";
            }
            t
        })
}

/// The texts the no-panic properties try: mutated library files and generated faults.
pub(crate) fn scenario_texts() -> impl proptest::strategy::Strategy<Value = String> {
    proptest::prop_oneof![mutated_library(), generated_fault()]
}

/// Whatever parses gives the runner only values it can carry out.
fn assert_runnable(s: &Scenario) {
    assert!((1..=128).contains(&s.topology.onus.0));
    assert!(TIME_LIMIT_S.contains(s.time_limit_s));
    let limit = Duration::from_secs(s.time_limit_s);
    for f in &s.faults {
        if let Some(at) = f.at() {
            assert!(at < limit);
        }
        assert!(f.duration() <= Duration::from_secs(3600));
        assert!(f.occurrence.is_none_or(|n| n >= 1));
        assert!(f.forged.checked_add(f.corrupt).is_some());
    }
    if let Some(c) = &s.olt.campaign {
        assert!(c.start_in_s.is_none_or(|t| t < s.time_limit_s));
        assert!(c.canary.is_none_or(|p| p <= 100) && c.kill_threshold <= 100);
        assert!(c.pace.is_none_or(|p| p >= 1));
    }
    assert!((1..=256).contains(&s.olt.window));
    assert!(olt::limits::TIMEOUT_MS.contains(s.olt.timeout_ms));
    assert!(olt::limits::RETRIES.contains(u64::from(s.olt.retries)));
    assert!(s.olt.activate_flags <= 2 && s.olt.activate_defer_s >= 1);
    assert!(s.image.size >= 1 && s.image.size as u64 <= pon::firmware::MAX_PAYLOAD_LEN);
    assert!(s.image.version.len() <= 14 && s.topology.version.len() <= 14);
    for g in &s.topology.groups {
        assert!(g.max_window.is_none_or(|w| (1..=256).contains(&w)));
        assert!(g.busy_ms.is_none_or(|b| b <= 60_000));
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 2000, ..proptest::prelude::ProptestConfig::default()
    })]

    #[test]
    fn any_text_parses_or_is_refused_never_a_panic(text in "\\PC{0,200}") {
        if let Ok(s) = parse(&text) {
            assert_runnable(&s);
        }
    }

    #[test]
    fn a_mutated_library_scenario_parses_or_is_refused_never_a_panic(text in scenario_texts()) {
        match parse(&text) {
            Ok(s) => assert_runnable(&s),
            Err(e) => proptest::prop_assert!(!e.is_empty() && !e.contains("Some(")),
        }
    }
}
