//! Reading a scenario file and checking what serde cannot check alone: values that depend on
//! each other (ONU ids within the topology, faults that fit the mode), each error naming its
//! line and key.

use std::path::Path;

use super::*;

/// A scenario that could not be read, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed, or a key or value is not allowed (the message has the line).
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What and where.
        message: String,
    },
}

/// Reads and checks a scenario file.
pub fn load(path: &Path) -> Result<Scenario, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text).map_err(|message| SpecError::Invalid {
        path: path.display().to_string(),
        message,
    })
}

/// Parses and checks a scenario's text. The error names the line and the key.
pub fn parse(text: &str) -> Result<Scenario, String> {
    let s: Scenario = toml::from_str(text).map_err(|e| {
        let fault = e.message().trim().to_string();
        let Some(span) = e.span() else {
            return fault;
        };
        let line_no = text[..span.start.min(text.len())].matches('\n').count() + 1;
        let line = text.lines().nth(line_no - 1).unwrap_or_default().trim();
        // The key the value belongs to, when the line is `key = value`.
        match line.split_once('=') {
            Some((key, _)) if !line.starts_with('[') => {
                format!("line {line_no}, key `{}`: {fault}", key.trim())
            }
            _ => format!("line {line_no} ({line}): {fault}"),
        }
    })?;
    check(&s, text)?;
    Ok(s)
}

/// The line of the first `key =` in `text`, for errors found after parsing.
fn line_of(text: &str, key: &str) -> String {
    key_line(text.lines().enumerate(), key)
}

/// The line of `key =` in fault `index` (from 0: its `[[faults]]` table), or of the table
/// itself when the key is not written there.
fn fault_line(text: &str, index: usize, key: &str) -> String {
    let mut lines = text.lines().enumerate();
    let Some((header, _)) = lines
        .by_ref()
        .filter(|(_, l)| l.trim_start().starts_with("[[faults]]"))
        .nth(index)
    else {
        return line_of(text, key);
    };
    let table: Vec<(usize, &str)> = lines
        .take_while(|(_, l)| !l.trim_start().starts_with('['))
        .collect();
    match key_line(table.into_iter(), key) {
        found if !found.is_empty() => found,
        _ => format!("line {}: ", header + 1),
    }
}

/// `line N: ` of the first of `lines` that sets `key`, or nothing.
fn key_line<'a>(mut lines: impl Iterator<Item = (usize, &'a str)>, key: &str) -> String {
    lines
        .find(|(_, l)| {
            let l = l.trim_start();
            l.starts_with(key) && l[key.len()..].trim_start().starts_with('=')
        })
        .map_or_else(String::new, |(n, _)| format!("line {}: ", n + 1))
}

/// What serde cannot check alone: values that depend on each other.
fn check(s: &Scenario, text: &str) -> Result<(), String> {
    let n = s.topology.onus.0 * u16::from(s.topology.pons);
    let within = |set: &OnuSet, what: &str, line: String| -> Result<(), String> {
        if let OnuSet::Ids(ids) = set
            && let Some(bad) = ids.iter().find(|i| **i > n)
        {
            return Err(format!(
                "{line}{what}: ONU {bad} does not exist (topology.onus = {n})"
            ));
        }
        Ok(())
    };
    for g in &s.topology.groups {
        within(&g.onus, "topology.groups.onus", line_of(text, "onus"))?;
        if matches!(g.onus, OnuSet::Rest) {
            return Err(format!(
                "{}topology.groups.onus: \"rest\" is for expectations; give \"all\" or IDs",
                line_of(text, "onus")
            ));
        }
    }
    // A count cannot exceed the ONUs there are (every port's).
    for (key, v) in [
        ("upgraded", s.expect.upgraded),
        ("failed", s.expect.failed),
        ("skipped", s.expect.skipped),
        ("refused", s.expect.refused),
    ] {
        if let Some(v) = v.filter(|v| *v > u32::from(n)) {
            return Err(format!(
                "{}expect.{key} = {v} is out of range: allowed 0 to {n} ONUs (topology.onus on each of topology.pons)",
                line_of(text, key)
            ));
        }
    }
    if let Some(p) = s
        .faults
        .iter()
        .filter_map(|f| f.pon)
        .find(|p| *p > s.topology.pons)
    {
        return Err(format!(
            "{}faults.pon: PON port {p} does not exist (topology.pons = {})",
            line_of(text, "pon"),
            s.topology.pons
        ));
    }
    if s.olt.strict && s.olt.mode == Mode::Multicast {
        return Err(format!(
            "{}olt.strict: strict G.988 needs mode = \"unicast\" (the multicast download carries window numbers)",
            line_of(text, "strict")
        ));
    }
    let limit = s.time_limit_s;
    if let Some(start) = s.olt.campaign.as_ref().and_then(|c| c.start_in_s)
        && start >= limit
    {
        return Err(format!(
            "{}olt.campaign.start_in_s = {start} is after the rollout is stopped \
             (time_limit_s = {limit}): allowed 0 to {} s",
            line_of(text, "start_in_s"),
            limit - 1
        ));
    }
    for (i, f) in s.faults.iter().enumerate() {
        let kind = kind_name(f.kind);
        let needs_onus = !matches!(f.kind, FaultKind::OltRestart | FaultKind::RogueSender);
        if let Some(set) = &f.onus {
            within(set, "faults.onus", fault_line(text, i, "onus"))?;
        }
        if needs_onus && f.onus.is_none() && f.share.is_none() {
            return Err(format!(
                "{}faults: a {kind} fault needs `onus` (IDs, ranges or \"all\") or `share`",
                fault_line(text, i, "kind"),
            ));
        }
        if let Some(at) = f.at_s
            && at >= limit as f64
        {
            return Err(format!(
                "{}faults.at_s = {at} is after the rollout is stopped (time_limit_s = {limit}): \
                 allowed 0 to less than {limit} s",
                fault_line(text, i, "at_s"),
            ));
        }
        match f.kind {
            FaultKind::PowerLoss if f.point.is_none() => {
                return Err(format!(
                    "{}faults.point: a power-loss fault needs a point: {}",
                    fault_line(text, i, "kind"),
                    FaultPoint::ALL.map(|p| p.name()).join(", ")
                ));
            }
            FaultKind::PowerLoss if f.at_s.is_some() || f.on.is_some() => {
                return Err(format!(
                    "{}faults: a power-loss fault happens at its point; `at_s` and `on` are for the other kinds",
                    fault_line(text, i, if f.at_s.is_some() { "at_s" } else { "on" })
                ));
            }
            FaultKind::Sigkill
            | FaultKind::Silent
            | FaultKind::OltRestart
            | FaultKind::RogueSender
                if f.at_s.is_none() && f.on.is_none() =>
            {
                return Err(format!(
                    "{}faults: a {kind} fault needs `at_s` (seconds after the OLT starts) or `on` (an ONU event)",
                    fault_line(text, i, "kind"),
                ));
            }
            FaultKind::Silent if f.duration_s.is_none() => {
                return Err(format!(
                    "{}faults.duration_s: a silent fault needs how long (s, {DURATION_S})",
                    fault_line(text, i, "kind")
                ));
            }
            _ => {}
        }
    }
    for e in &s.expect.onus {
        within(&e.onus, "expect.onus.onus", line_of(text, "onus"))?;
    }
    if let Some(set) = &s.golden.wrecked {
        within(set, "golden.wrecked", line_of(text, "wrecked"))?;
    }
    if let Some(set) = &s.expect.in_recovery {
        within(set, "expect.in_recovery", line_of(text, "in_recovery"))?;
    }
    if let Some(f) = &s.fleet {
        fleet::check(s, f, text)?;
    }
    if s.golden.tampered && s.golden.server == GoldenServer::File {
        return Err(format!(
            "{}golden.tampered needs a server: golden.server = \"embedded\" or \"tftpd-hpa\"",
            line_of(text, "tampered")
        ));
    }
    Ok(())
}
