//! The download in the narration: told by windows (which arrived how, which needed a repair
//! and how it went), not section by section.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;

use omci_codec::ResultCode;

use super::prose::para;
use super::windows::{Analysis, Dest, Ev, ev_frame};
use super::wording::{and_list, plural, ranges, result_words, secs};

/// The story of one window for one ONU.
#[derive(Clone, Debug, Default)]
struct WindowStory {
    /// Bursts that reached the ONU (on the group or alone).
    pub(super) bursts: Vec<usize>,
    pub(super) answers: Vec<usize>,
}

/// What the download summaries have told so far.
#[derive(Default)]
pub(super) struct DownloadMemo {
    /// Windows of the current download already told of.
    pub(super) seen: HashSet<u32>,
    /// Why windows are repeated has been explained.
    pub(super) repair_told: bool,
}

/// The download, summarised by windows.
pub(super) fn download_summary(
    w: &mut String,
    a: &Analysis<'_>,
    evs: &[Ev],
    memo: &mut DownloadMemo,
) {
    const INDENT: &str = "           ";
    let mut windows: BTreeMap<u32, WindowStory> = BTreeMap::new();
    let mut unknown_bursts = 0usize;
    let mut unknown_answers = 0usize;
    let mut on_group = 0usize;
    let mut alone = 0usize;
    let mut by_group: BTreeSet<u32> = BTreeSet::new();
    let mut by_unicast: BTreeSet<u32> = BTreeSet::new();
    let mut again: BTreeSet<u32> = BTreeSet::new();
    let mut sizes: BTreeMap<u32, usize> = BTreeMap::new();
    for &e in evs {
        match e {
            Ev::Burst(b) => {
                let burst = &a.bursts[b];
                match burst.dest {
                    Dest::Group => on_group += burst.sections.len(),
                    Dest::Onu(_) => alone += burst.sections.len(),
                }
                match burst.window {
                    Some(win) => {
                        let story = windows.entry(win).or_default();
                        if story.bursts.is_empty() {
                            if !memo.seen.insert(win) {
                                again.insert(win);
                            } else {
                                match burst.dest {
                                    Dest::Group => by_group.insert(win),
                                    Dest::Onu(_) => by_unicast.insert(win),
                                };
                            }
                        }
                        story.bursts.push(b);
                        if burst.full {
                            sizes.entry(win).or_insert(burst.sections.len());
                        }
                    }
                    None => unknown_bursts += 1,
                }
            }
            Ev::Answer(x) => match a.answers[x].window {
                Some(win) => windows.entry(win).or_default().answers.push(x),
                None => unknown_answers += 1,
            },
            _ => {}
        }
    }
    let (t0, t1) = (
        evs.first()
            .map(|e| a.time(ev_frame(a, *e)))
            .unwrap_or_default(),
        evs.last()
            .map(|e| a.time(ev_frame(a, *e)))
            .unwrap_or_default(),
    );
    let all: Vec<u32> = windows.keys().copied().collect();
    // The usual window length, and the last window's when it is shorter.
    let common = {
        let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
        for n in sizes.values() {
            *counts.entry(*n).or_default() += 1;
        }
        counts.into_iter().max_by_key(|(_, c)| *c).map(|(n, _)| n)
    };
    let mut shape = String::new();
    if let Some(n) = common {
        let _ = write!(shape, " ({n} sections each");
        if let Some((&lw, &ln)) = sizes.last_key_value()
            && ln != n
            && lw == *all.last().unwrap_or(&0)
        {
            let _ = write!(shape, ", the last {ln}");
        }
        shape.push(')');
    }
    let mut sent = Vec::new();
    if on_group > 0 {
        sent.push(format!("{on_group} on the group"));
    }
    if alone > 0 {
        sent.push(format!("{alone} to this ONU alone"));
    }
    let answers = evs.iter().filter(|e| matches!(e, Ev::Answer(_))).count();
    let _ = writeln!(
        w,
        "{:>9}  {}: Download sections: {}; {} from the ONU.",
        secs(t0),
        if secs(t1) != secs(t0) {
            format!("to {}", secs(t1))
        } else {
            "at once".to_string()
        },
        if sent.is_empty() {
            "none".to_string()
        } else {
            and_list(&sent)
        },
        plural(answers, "window answer", "window answers")
    );
    if !by_group.is_empty() {
        para(
            w,
            INDENT,
            &format!(
                "{} {}{shape} arrived on the multicast group.",
                if by_group.len() == 1 {
                    "Window"
                } else {
                    "Windows"
                },
                ranges(by_group.iter().copied())
            ),
        );
    }
    if !by_unicast.is_empty() {
        para(
            w,
            INDENT,
            &format!(
                "{} {}{} {} sent to this ONU alone (unicast).",
                if by_unicast.len() == 1 {
                    "Window"
                } else {
                    "Windows"
                },
                ranges(by_unicast.iter().copied()),
                if by_group.is_empty() {
                    shape.as_str()
                } else {
                    ""
                },
                if by_unicast.len() == 1 { "was" } else { "were" }
            ),
        );
    }
    if !again.is_empty() {
        para(
            w,
            INDENT,
            &format!(
                "{} {}, told of above, again.",
                if again.len() == 1 {
                    "Window"
                } else {
                    "Windows"
                },
                ranges(again.iter().copied())
            ),
        );
    }
    // Which windows needed more than one try, and their stories.
    let mut first_try: Vec<u32> = Vec::new();
    let mut repaired: Vec<(u32, String)> = Vec::new();
    let mut unanswered: Vec<u32> = Vec::new();
    for (&win, story) in &windows {
        let results: Vec<ResultCode> = story.answers.iter().map(|&x| a.answers[x].result).collect();
        let ar_bursts = story
            .bursts
            .iter()
            .filter(|&&b| a.bursts[b].ar.is_some())
            .count();
        if results == [ResultCode::Success] && ar_bursts <= 1 {
            first_try.push(win);
            continue;
        }
        if results.is_empty() {
            unanswered.push(win);
            continue;
        }
        let mut steps: Vec<(usize, String)> = Vec::new();
        for &b in story.bursts.iter().skip(1) {
            let burst = &a.bursts[b];
            let to = match burst.dest {
                Dest::Group => "to the group",
                Dest::Onu(_) => "to it alone",
            };
            let at = secs(a.time(burst.frames[0]));
            let what = if burst.sections.len() == 1 && burst.ar.is_some() {
                format!("{at} AR section sent again {to}")
            } else if burst.full {
                format!("{at} whole window sent again {to}")
            } else {
                format!(
                    "{at} sections {} sent again {to}",
                    ranges(burst.sections.iter().map(|&s| u32::from(s)))
                )
            };
            steps.push((burst.frames[0], what));
        }
        for &x in &story.answers {
            let ans = &a.answers[x];
            let at = secs(a.time(ans.frame));
            let what = match (ans.result, ans.missing) {
                (ResultCode::ProcessingError, Some(n)) => format!(
                    "{at} processing error ({} missing)",
                    plural(n, "section", "sections")
                ),
                (r, _) => format!("{at} {}", result_words(r)),
            };
            steps.push((ans.frame, what));
        }
        steps.sort_by_key(|(f, _)| *f);
        let mut parts: Vec<String> = Vec::new();
        let first_answer = story.answers.first().map(|&x| a.answers[x].frame);
        let first_retry = story.bursts.get(1).map(|&b| a.bursts[b].frames[0]);
        let first_sent = story.bursts.first().map(|&b| a.bursts[b].frames[0]);
        if let (Some(r), Some(fa), Some(fs)) = (first_retry, first_answer, first_sent)
            && r < fa
        {
            parts.push(format!("sent at {}, no answer", secs(a.time(fs))));
        }
        parts.extend(steps.into_iter().map(|(_, s)| s));
        repaired.push((win, parts.join(", ")));
    }
    if !first_try.is_empty() {
        let list = ranges(first_try.iter().copied());
        let text = if first_try.len() == all.len() {
            "Every window was answered success at the first try.".to_string()
        } else if list.len() <= 60 {
            format!(
                "{} ({list}) answered success at the first try.",
                plural(first_try.len(), "window", "windows"),
            )
        } else {
            format!(
                "{} of {} answered success at the first try.",
                first_try.len(),
                plural(all.len(), "window", "windows"),
            )
        };
        para(w, INDENT, &text);
    }
    if !repaired.is_empty() {
        let names: Vec<String> = repaired.iter().map(|(w, _)| w.to_string()).collect();
        let which = if names.len() > 8 {
            format!(
                "Windows {} ({} windows) needed",
                ranges(repaired.iter().map(|(w, _)| *w)),
                names.len()
            )
        } else if names.len() == 1 {
            format!("Window {} needed", names[0])
        } else {
            format!("Windows {} needed", and_list(&names))
        };
        let why = if memo.repair_told {
            ""
        } else {
            " A window is sent again when the ONU answers processing error (sections were lost \
             on the way: the OLT sends them again) or when no answer comes (the AR section or its \
             answer was lost: the OLT asks again)."
        };
        memo.repair_told = true;
        para(w, INDENT, &format!("{which} a repair.{why}"));
        const SHOWN: usize = 10;
        for (win, story) in repaired.iter().take(SHOWN) {
            para(w, INDENT, &format!("- window {win}: {story}."));
        }
        if repaired.len() > SHOWN {
            para(
                w,
                INDENT,
                &format!(
                    "- ... and {} more.",
                    plural(repaired.len() - SHOWN, "window", "windows")
                ),
            );
        }
    }
    if !unanswered.is_empty() {
        para(
            w,
            INDENT,
            &format!(
                "No answer was seen for {} {}.",
                if unanswered.len() == 1 {
                    "window"
                } else {
                    "windows"
                },
                ranges(unanswered.iter().copied())
            ),
        );
    }
    if unknown_bursts + unknown_answers > 0 {
        para(
            w,
            INDENT,
            &format!(
                "({} and {} could not be tied to a window.)",
                plural(unknown_bursts, "burst of sections", "bursts of sections"),
                plural(unknown_answers, "answer", "answers")
            ),
        );
    }
}
