//! The narration of one ONU's upgrade: its frames gathered into items (an exchange, a lone
//! frame, the download), each phase introduced the first time it comes, the final state and
//! a verdict.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use omci_codec::pcap::Direction;

use super::frame::{Body, Frame};
use super::phases::{Boot, OnuState, Phase};
use super::prose::{comment, intro, long_text, para};
use super::summary::{DownloadMemo, download_summary};
use super::windows::{Analysis, Dest, Ev, ev_frame};
use super::wording::{frame_text, image_name, ranges, secs, version_text};

/// One thing that happened to the explained ONU.
#[derive(Clone, Debug)]
enum Item {
    /// A request and its answer (if one came).
    Exchange {
        request: usize,
        response: Option<usize>,
    },
    /// A frame on its own: a notification, or an answer no request was seen for.
    Single(usize),
    /// The download: bursts and answers.
    Download(Vec<Ev>),
    /// A new capture file.
    FileStart(usize),
}

/// A plain-text narration of ONU `onu`'s upgrade, in time order, for someone new to PON: each
/// phase and why it exists, each message by its G.988 name, with times in seconds from the
/// first frame of the capture. The download is summarised by windows.
pub fn explain(frames: &[Frame], onu: u16) -> String {
    let a = Analysis::new(frames);
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "How ONU {onu} was upgraded, as the OLT's capture shows it"
    );
    let _ = writeln!(
        w,
        "(times are seconds since the capture's first frame; \"OLT -> ONU\" is downstream)"
    );
    let _ = writeln!(w);
    if !a.onus.contains(&onu) {
        let seen: Vec<String> = a.onus.iter().map(u16::to_string).collect();
        let _ = writeln!(
            w,
            "ONU {onu} does not appear in this capture ({} frames; ONUs seen: {}).",
            a.frames.len(),
            if seen.is_empty() {
                "none".to_string()
            } else {
                seen.join(", ")
            }
        );
        return out;
    }
    para(
        w,
        "",
        "The OLT manages each ONU with OMCI messages (ITU-T G.988): a request, answered by the \
         ONU with a response carrying the same transaction id (TCI). Each message addresses a \
         managed entity (ME); the software lives in the Software image ME (class 7). An ONU has \
         two of them, image 0 and image 1: at most one is active (it runs) and one is committed \
         (it boots by default). The new software goes into the other one, so that the ONU always \
         keeps a working image, whatever happens during the upgrade.",
    );
    if a.has_group {
        para(
            w,
            "",
            "This rollout used the multicast group: the OLT sends each window of the image once, \
             and that one copy reaches every ONU; each ONU answers on its own channel (its OMCC).",
        );
    }
    let others: Vec<u32> = a
        .onus
        .iter()
        .filter(|&&o| o != onu)
        .map(|&o| u32::from(o))
        .collect();
    if !others.is_empty() {
        let _ = writeln!(
            w,
            "The capture also holds {} {}: only ONU {onu} is followed here.",
            if others.len() == 1 { "ONU" } else { "ONUs" },
            ranges(others)
        );
    }

    let items = collect_items(&a, onu);
    // The phase of every item, whether it is a boot announcement, and the state after it.
    let mut phases: Vec<Phase> = Vec::with_capacity(items.len());
    let mut boots: Vec<Boot> = Vec::with_capacity(items.len());
    let mut states: Vec<OnuState> = Vec::with_capacity(items.len());
    let mut st = OnuState::default();
    for item in &items {
        let mut boot = Boot::No;
        let phase = match item {
            Item::Exchange { request, response } => {
                let p = st.step(&a.frames[*request]);
                if let Some(r) = response {
                    st.step(&a.frames[*r]);
                }
                p
            }
            Item::Single(f) => {
                let fr = &a.frames[*f];
                boot = Boot::of(&st, fr);
                st.step(fr)
            }
            Item::Download(_) => Phase::Download,
            Item::FileStart(_) => {
                // A restarted OLT starts from a survey: what it did before is forgotten.
                st = OnuState {
                    images: std::mem::take(&mut st.images),
                    ..OnuState::default()
                };
                Phase::Other
            }
        };
        phases.push(phase);
        boots.push(boot);
        states.push(st.clone());
    }
    let mut current: Option<Phase> = None;
    let mut told: HashSet<Phase> = HashSet::new();
    let mut step_no = 0usize;
    let mut memo = DownloadMemo::default();
    let mut i = 0;
    while i < items.len() {
        if matches!(items[i], Item::FileStart(_))
            || matches!(items[i], Item::Exchange { request, .. }
                if matches!(a.frames[request].body, Body::StartDownload { .. }))
        {
            memo.seen.clear();
        }
        // Identical exchanges in a row, of one phase, are one line with "×N".
        let mut n = 1;
        if let Item::Exchange { request, response } = &items[i] {
            while let Some(Item::Exchange {
                request: r2,
                response: s2,
            }) = items.get(i + n)
            {
                let same_request = frame_text(&a.frames[*request], Boot::No)
                    == frame_text(&a.frames[*r2], Boot::No);
                let same_answer = match (response, s2) {
                    (None, None) => true,
                    (Some(x), Some(y)) => {
                        frame_text(&a.frames[*x], Boot::No) == frame_text(&a.frames[*y], Boot::No)
                    }
                    _ => false,
                };
                if same_request && same_answer && phases[i + n] == phases[i] {
                    n += 1;
                } else {
                    break;
                }
            }
        }
        let item = &items[i];
        let first = match item {
            Item::Exchange { request, .. } => Some(*request),
            Item::Single(f) => Some(*f),
            Item::Download(evs) => evs.first().map(|e| ev_frame(&a, *e)),
            Item::FileStart(_) => None,
        };
        let phase = phases[i];
        let boot = boots[i];
        let st = &states[i + n - 1];
        if let Item::FileStart(f) = item {
            let _ = writeln!(w);
            let _ = writeln!(
                w,
                "{:>9}  Capture file {} begins: the OLT was restarted. A restarted OLT asks each ONU",
                secs(a.time(*f)),
                a.frames[*f].file + 1
            );
            let _ = writeln!(
                w,
                "           where it is (Get) and carries on from there: nothing already done is lost."
            );
            current = None;
            i += 1;
            continue;
        }
        if phase != Phase::Other && current != Some(phase) {
            step_no += 1;
            let again = !told.insert(phase);
            let _ = writeln!(w);
            let _ = writeln!(
                w,
                "{step_no}. {}{}",
                phase.title(),
                if again { " (again)" } else { "" }
            );
            if !again {
                intro(w, phase, st, &a, onu, first.map(|f| &a.frames[f]));
            }
            current = Some(phase);
        }
        match item {
            Item::Exchange { request, response } => {
                let req = &a.frames[*request];
                let times = if n > 1 {
                    let last = match &items[i + n - 1] {
                        Item::Exchange { request, .. } => a.time(*request),
                        _ => req.time,
                    };
                    format!("  (×{n}, until {})", secs(last))
                } else {
                    String::new()
                };
                let _ = writeln!(
                    w,
                    "{:>9}  OLT -> ONU  {}{times}",
                    secs(req.time),
                    long_text(req)
                );
                match response {
                    Some(r) => {
                        let resp = &a.frames[*r];
                        let _ = writeln!(
                            w,
                            "{:>9}  ONU -> OLT  {}{}",
                            secs(resp.time),
                            long_text(resp),
                            if n > 1 {
                                format!("  (×{n})")
                            } else {
                                String::new()
                            }
                        );
                        comment(w, req, resp, n, st);
                    }
                    None => {
                        let _ = writeln!(
                            w,
                            "           (no answer{}{})",
                            if n > 1 { " to any of them" } else { "" },
                            match phase {
                                Phase::Reboot => ": the ONU is rebooting, the OLT asks again",
                                _ => ": the OLT's timeout sends the request again",
                            }
                        );
                    }
                }
            }
            Item::Single(f) => {
                let fr = &a.frames[*f];
                let dir = if fr.direction == Direction::Upstream {
                    "ONU -> OLT"
                } else {
                    "OLT -> ONU"
                };
                let mut text = frame_text(fr, boot);
                if let Body::AttributeValueChange { image: Some(s), .. } = &fr.body {
                    text = format!(
                        "Attribute value change{}: {} is now {}",
                        boot.label(),
                        image_name(fr.me_instance),
                        s.words()
                    );
                }
                let _ = writeln!(w, "{:>9}  {dir}  {text}", secs(fr.time));
                if boot == Boot::Unexpected {
                    para(
                        w,
                        "           ",
                        "The ONU booted without being asked to (a power cut, say): it came back \
                         on its committed image, and what it was downloading or verifying is \
                         lost. The OLT finds out from the ONU's next answers.",
                    );
                }
            }
            Item::Download(evs) => download_summary(w, &a, evs, &mut memo),
            Item::FileStart(_) => {}
        }
        i += n;
    }

    // The final state.
    step_no += 1;
    let _ = writeln!(w);
    let _ = writeln!(w, "{step_no}. Final state");
    if st.images.is_empty() {
        let _ = writeln!(
            w,
            "   The ONU reported no software image values in this capture."
        );
    } else {
        let _ = writeln!(w, "   As the ONU last reported them:");
        for (inst, s) in &st.images {
            let _ = writeln!(w, "   - {}: {}", image_name(*inst), s.words());
        }
    }
    let target = st.target.and_then(|t| st.images.get(&t).map(|s| (t, s)));
    let committed_image = st
        .images
        .iter()
        .find(|(_, s)| s.is_committed == Some(true))
        .map(|(i, s)| {
            format!(
                "{} ({})",
                image_name(*i),
                s.version.as_deref().map_or("?".into(), version_text)
            )
        });
    let verdict = match target {
        _ if st.fell_back => format!(
            "ONU {onu} was not upgraded: it came back on its committed image{} after the \
             Activate (the new image did not boot). Nothing is lost: the committed image was \
             never touched.",
            committed_image
                .map(|c| format!(", {c}"))
                .unwrap_or_default()
        ),
        Some((_, s)) if st.failure.is_some() && s.is_active != Some(true) => format!(
            "ONU {onu} was not upgraded: {}. It runs its committed image{}.",
            st.failure.as_deref().unwrap_or_default(),
            committed_image
                .map(|c| format!(", {c}"))
                .unwrap_or_default()
        ),
        Some((t, s))
            if s.is_active == Some(true) && s.is_committed == Some(true) && st.committed =>
        {
            format!(
                "ONU {onu} is upgraded: {} ({}) runs and is committed; the other image stays as \
                 the fallback for the next upgrade.",
                image_name(t),
                s.version
                    .as_deref()
                    .map_or("new version".into(), version_text)
            )
        }
        Some((t, s)) if s.is_active == Some(true) => format!(
            "ONU {onu} runs {} ({}), not committed: a reboot would bring back the committed image.",
            image_name(t),
            s.version
                .as_deref()
                .map_or("new version".into(), version_text)
        ),
        Some((t, s)) if s.is_valid == Some(true) => format!(
            "ONU {onu} holds the new software in {} (valid) but does not run it.",
            image_name(t)
        ),
        Some((t, _)) => format!(
            "ONU {onu} was not upgraded: {} is not a valid image; it runs its committed one.",
            image_name(t)
        ),
        None => format!("ONU {onu} was not sent a download in this capture."),
    };
    para(w, "   ", &verdict);
    out
}

/// The explained ONU's items in time order: exchanges paired by TCI, the download gathered.
fn collect_items(a: &Analysis<'_>, onu: u16) -> Vec<Item> {
    let mut items: Vec<Item> = Vec::new();
    // (action, TCI) -> the item of the latest request still without an answer.
    let mut waiting: HashMap<(String, u16), usize> = HashMap::new();
    let mut target: Option<u16> = None;
    let mut downloading = false;
    // Windows this ONU holds (answered success) since its last Start: the group's repeats of
    // them are for other ONUs.
    let mut held: HashSet<u32> = HashSet::new();
    // Group bursts that are part of this ONU's story.
    let mut ours: HashSet<usize> = HashSet::new();
    for &ev in &a.events {
        match ev {
            Ev::FileStart(f) => {
                waiting.clear();
                downloading = false;
                items.push(Item::FileStart(f));
            }
            Ev::Burst(b) => {
                let burst = &a.bursts[b];
                let relevant = match burst.dest {
                    Dest::Onu(o) => o == onu,
                    Dest::Group => {
                        downloading
                            && target == Some(burst.instance)
                            && burst.window.is_none_or(|w| !held.contains(&w))
                    }
                };
                if relevant {
                    ours.insert(b);
                    match items.last_mut() {
                        Some(Item::Download(evs)) => evs.push(ev),
                        _ => items.push(Item::Download(vec![ev])),
                    }
                }
            }
            Ev::Answer(x) => {
                let ans = &a.answers[x];
                // An answer to a group repeat this ONU did not need is left out too.
                if ans.onu == onu && ans.burst.is_none_or(|b| ours.contains(&b)) {
                    if ans.result.is_success()
                        && let Some(w) = ans.window
                    {
                        held.insert(w);
                    }
                    match items.last_mut() {
                        Some(Item::Download(evs)) => evs.push(ev),
                        _ => items.push(Item::Download(vec![ev])),
                    }
                }
            }
            Ev::Frame(i) => {
                let f = &a.frames[i];
                if f.onu() != Some(onu) {
                    continue;
                }
                match &f.body {
                    Body::StartDownload { .. } => {
                        target = Some(f.me_instance);
                        downloading = true;
                        held.clear();
                    }
                    Body::EndDownload { .. } => downloading = false,
                    _ => {}
                }
                let key = (f.body.action().to_string(), f.tci);
                if f.direction == Direction::Downstream {
                    waiting.insert(key, items.len());
                    items.push(Item::Exchange {
                        request: i,
                        response: None,
                    });
                } else if f.body.is_response()
                    && let Some(at) = waiting.remove(&key)
                    && let Some(Item::Exchange { response, .. }) = items.get_mut(at)
                {
                    *response = Some(i);
                } else {
                    items.push(Item::Single(i));
                }
            }
        }
    }
    // An unanswered retransmission followed by the answered one: G.988 retransmissions keep
    // their TCI, so the answer went to the last; the earlier ones show as unanswered.
    items
}
