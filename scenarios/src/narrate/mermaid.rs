//! The sequence diagram of a rollout, in Mermaid.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::time::Duration;

use omci_codec::ResultCode;
use omci_codec::pcap::Direction;

use super::frame::{Body, Frame};
use super::phases::{Boot, OnuState, Phase};
use super::windows::{Analysis, Dest, Ev};
use super::wording::{burst_text, frame_text, plural, result_words, secs};

/// Arrows beyond which the middle of the diagram is left out.
const MAX_ARROWS: usize = 400;

#[derive(Clone, Debug)]
enum Line {
    Arrow {
        from: String,
        to: String,
        dashed: bool,
        text: String,
        count: usize,
        window: Option<u32>,
        time: Duration,
    },
    Note(String),
}

/// A request arrow that identical requests may join ("×N").
#[derive(Clone, Debug)]
struct Run {
    pub(super) request: usize,
    pub(super) text: String,
    /// The arrow of the last answer, its text, and whether it lets the next identical request
    /// join (device busy, or no answer at all).
    pub(super) response: Option<(usize, String)>,
    pub(super) joinable: bool,
}

/// Mermaid text must not hold `;` (a statement end) or `#` (an entity).
fn clean(text: &str) -> String {
    text.replace(';', ",").replace('#', "no. ")
}

/// A Markdown document holding one Mermaid sequence diagram of the whole upgrade as the OLT
/// saw it: participants `OLT`, `Group` (when the capture has multicast frames) and the ONUs
/// in `onus` (at most 3 are shown; none given: the first 3 of the capture).
///
/// The Download sections of one window are one arrow ("window 3: sections 0-31, AR on 31,
/// window CRC ..."), the ONU's answer one arrow back; identical requests answered device busy
/// (or not answered) are one arrow marked "×N"; notes mark the phases. When more than about
/// 400 arrows would be drawn, the first and last 200 are kept and a note says how many were
/// left out. The text starts with ```` ```mermaid ```` and ends with the closing fence (no
/// newline after it).
pub fn mermaid(frames: &[Frame], onus: &[u16]) -> String {
    let a = Analysis::new(frames);
    let shown: Vec<u16> = if onus.is_empty() {
        a.onus.iter().copied().take(3).collect()
    } else {
        let mut v = Vec::new();
        for &o in onus {
            if !v.contains(&o) && v.len() < 3 {
                v.push(o);
            }
        }
        v
    };
    let pid = |o: u16| format!("ONU{o}");
    let last_participant = shown.last().map_or_else(
        || {
            if a.has_group {
                "Group".to_string()
            } else {
                "OLT".to_string()
            }
        },
        |&o| pid(o),
    );
    let note_over = if last_participant == "OLT" {
        "OLT".to_string()
    } else {
        format!("OLT,{last_participant}")
    };

    let mut lines: Vec<Line> = Vec::new();
    let mut states: HashMap<u16, OnuState> = HashMap::new();
    let mut noted: HashSet<Phase> = HashSet::new();
    let mut runs: HashMap<u16, Run> = HashMap::new();
    let note = |lines: &mut Vec<Line>, noted: &mut HashSet<Phase>, p: Phase, t: Duration| {
        if matches!(p, Phase::Other) {
            return;
        }
        if noted.insert(p) {
            lines.push(Line::Note(format!("{} ({})", p.note(a.has_group), secs(t))));
        }
    };

    for ev in &a.events {
        match *ev {
            Ev::FileStart(i) => {
                runs.clear();
                noted.clear();
                for st in states.values_mut() {
                    *st = OnuState {
                        images: std::mem::take(&mut st.images),
                        ..OnuState::default()
                    };
                }
                lines.push(Line::Note(format!(
                    "Capture file {} begins at {}: the OLT was restarted",
                    a.frames[i].file + 1,
                    secs(a.time(i))
                )));
            }
            Ev::Burst(b) => {
                let burst = &a.bursts[b];
                let to = match burst.dest {
                    Dest::Group => "Group".to_string(),
                    Dest::Onu(o) if shown.contains(&o) => pid(o),
                    Dest::Onu(_) => continue,
                };
                if let Dest::Onu(o) = burst.dest {
                    runs.remove(&o);
                }
                let last = *burst.frames.last().unwrap_or(&0);
                note(
                    &mut lines,
                    &mut noted,
                    Phase::Download,
                    a.time(burst.frames[0]),
                );
                lines.push(Line::Arrow {
                    from: "OLT".into(),
                    to,
                    dashed: false,
                    text: burst_text(burst),
                    count: 1,
                    window: burst.window,
                    time: a.time(last),
                });
            }
            Ev::Answer(x) => {
                let ans = &a.answers[x];
                if !shown.contains(&ans.onu) {
                    continue;
                }
                runs.remove(&ans.onu);
                let w = ans
                    .window
                    .map_or_else(|| "window ?".to_string(), |w| format!("window {w}"));
                let text = match (ans.result, ans.missing) {
                    (ResultCode::ProcessingError, Some(n)) => format!(
                        "{w}: processing error (missing {})",
                        plural(n, "section", "sections")
                    ),
                    (r, _) => format!("{w}: {}", result_words(r)),
                };
                lines.push(Line::Arrow {
                    from: pid(ans.onu),
                    to: "OLT".into(),
                    dashed: true,
                    text,
                    count: 1,
                    window: ans.window,
                    time: a.time(ans.frame),
                });
            }
            Ev::Frame(i) => {
                let f = &a.frames[i];
                let Some(onu) = f.onu() else { continue };
                if !shown.contains(&onu) {
                    continue;
                }
                let st = states.entry(onu).or_default();
                if matches!(f.body, Body::StartDownload { .. }) && (st.end_sent || st.activated) {
                    // This ONU begins a new download (a new wave, a retry): its phases
                    // are worth marking again.
                    noted.clear();
                }
                let boot = Boot::of(st, f);
                let phase = st.step(f);
                note(&mut lines, &mut noted, phase, f.time);
                let text = frame_text(f, boot);
                let upstream = f.direction == Direction::Upstream;
                if !upstream {
                    // A request: it joins the previous identical one if that one was answered
                    // device busy or not answered at all.
                    if let Some(run) = runs.get_mut(&onu)
                        && run.text == text
                        && run.joinable
                        && let Some(Line::Arrow { count, .. }) = lines.get_mut(run.request)
                    {
                        *count += 1;
                        run.joinable = true; // until its answer says otherwise
                        continue;
                    }
                    lines.push(Line::Arrow {
                        from: "OLT".into(),
                        to: pid(onu),
                        dashed: false,
                        text: text.clone(),
                        count: 1,
                        window: None,
                        time: f.time,
                    });
                    runs.insert(
                        onu,
                        Run {
                            request: lines.len() - 1,
                            text,
                            response: None,
                            joinable: true,
                        },
                    );
                } else {
                    let is_answer = f.body.is_response();
                    if is_answer && let Some(run) = runs.get_mut(&onu) {
                        let busy = f.body.result() == Some(ResultCode::DeviceBusy);
                        if let Some((arrow, rtext)) = &run.response
                            && *rtext == text
                            && busy
                            && let Some(Line::Arrow { count, .. }) = lines.get_mut(*arrow)
                        {
                            *count += 1;
                            run.joinable = true;
                            continue;
                        }
                        lines.push(Line::Arrow {
                            from: pid(onu),
                            to: "OLT".into(),
                            dashed: true,
                            text: text.clone(),
                            count: 1,
                            window: None,
                            time: f.time,
                        });
                        run.response = Some((lines.len() - 1, text));
                        run.joinable = busy;
                        continue;
                    }
                    if !is_answer {
                        // A notification breaks a run of identical requests only when it
                        // is not a boot announcement during the reboot polling.
                        if boot != Boot::Announced {
                            runs.remove(&onu);
                        }
                    }
                    lines.push(Line::Arrow {
                        from: pid(onu),
                        to: "OLT".into(),
                        dashed: true,
                        text,
                        count: 1,
                        window: None,
                        time: f.time,
                    });
                }
            }
        }
    }

    // Keep the first and the last arrows when there are too many.
    let arrows = lines
        .iter()
        .filter(|l| matches!(l, Line::Arrow { .. }))
        .count();
    let mut kept: Vec<Line> = Vec::new();
    if arrows > MAX_ARROWS {
        let head = MAX_ARROWS / 2;
        let tail = MAX_ARROWS - head;
        let mut seen = 0usize;
        let mut omitted = 0usize;
        let mut windows: BTreeSet<u32> = BTreeSet::new();
        let mut span: Option<(Duration, Duration)> = None;
        let mut marker_at = None;
        for line in lines {
            let is_arrow = matches!(line, Line::Arrow { .. });
            let keep = seen < head || seen >= arrows - tail;
            if is_arrow {
                seen += 1;
            }
            if keep || (!is_arrow && seen <= head) {
                kept.push(line);
                continue;
            }
            if let Line::Arrow {
                window,
                time,
                count,
                ..
            } = &line
            {
                omitted += count;
                windows.extend(*window);
                span = Some(span.map_or((*time, *time), |(a, _)| (a, *time)));
                if marker_at.is_none() {
                    marker_at = Some(kept.len());
                }
            }
        }
        if let Some(at) = marker_at {
            let mut text = format!("... {omitted} exchanges omitted");
            if let Some((t0, t1)) = span {
                let _ = write!(text, " ({} to {}", secs(t0), secs(t1));
                if !windows.is_empty() {
                    let first = windows.first().copied().unwrap_or(0);
                    let last = windows.last().copied().unwrap_or(0);
                    let _ = write!(text, ", windows {first}-{last}");
                }
                text.push(')');
            }
            text.push_str(" ...");
            kept.insert(at, Line::Note(text));
        }
    } else {
        kept = lines;
    }

    let mut out = String::from("```mermaid\nsequenceDiagram\n");
    out.push_str("    participant OLT\n");
    if a.has_group {
        out.push_str("    participant Group as Group (multicast)\n");
    }
    for &o in &shown {
        let _ = writeln!(out, "    participant {} as ONU {o}", pid(o));
    }
    for line in &kept {
        match line {
            Line::Arrow {
                from,
                to,
                dashed,
                text,
                count,
                ..
            } => {
                let arrow = if *dashed { "-->>" } else { "->>" };
                let times = if *count > 1 {
                    format!(" ×{count}")
                } else {
                    String::new()
                };
                let _ = writeln!(out, "    {from}{arrow}{to}: {}{times}", clean(text));
            }
            Line::Note(text) => {
                let _ = writeln!(out, "    Note over {note_over}: {}", clean(text));
            }
        }
    }
    out.push_str("```");
    out
}
