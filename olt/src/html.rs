//! A picture of a rollout: one self-contained HTML page (inline CSS, SVG and a little script;
//! nothing fetched, so it opens from a file on a machine without a network) drawn from the
//! OLT's [`Report`] and, for a scenario, what the runner saw (faults, ONU events, checks).
//!
//! The page shows, top to bottom: the verdict and the rollout in one line; the summary table
//! (result, committed, active, count, ONUs); the checks of a scenario; each PON port's window
//! progress (the share of the image the ONUs hold, the windows sent to the group, repairs);
//! the timeline, one row per ONU with its phases as coloured bars (discover, start, download,
//! end, busy, verify, activate, reboot, health, held, commit, ...), faults and ONU events as
//! marks, and each failure marked at its end with its reason; then every ONU in a table and
//! the faults and deaths as they happened.
//!
//! Every string that comes from outside this module (versions, reasons, the scenario's name and
//! description, notes) goes through [`escape`]. The page is drawn here, on the server side: the
//! script only adds hover highlighting and a filter by result, and marks the page ready
//! (`<html data-ready="yes">`) once it has run, which the headless-browser test looks for.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::engine::{Mode, PonPort};
use crate::report::{OnuReport, OnuResult, Report};

/// What a mark on the timeline stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkKind {
    /// A fault carried out (a power cut, a SIGKILL, silence, the OLT restarted, ...).
    Fault,
    /// Something an ONU said or did (booted, activated, discarded its download, ...).
    Event,
}

impl MarkKind {
    fn class(self) -> &'static str {
        match self {
            MarkKind::Fault => "fault",
            MarkKind::Event => "event",
        }
    }
}

/// A moment to mark on the timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Mark {
    /// Seconds since the rollout began (the report's `started_at`).
    pub t_s: f64,
    /// The ONU's row (PON port, ONU-ID); None: the whole rollout (the OLT restarted).
    pub onu: Option<(PonPort, u16)>,
    /// What it is.
    pub kind: MarkKind,
    /// What happened, in words.
    pub words: String,
}

/// One check of a scenario, as the page lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckLine {
    /// What was checked and what was found, in words.
    pub text: String,
    /// It held.
    pub ok: bool,
}

/// Everything one page shows.
#[derive(Clone, Debug, Default)]
pub struct Page<'a> {
    /// The page's title (the scenario's name, or "olt rollout").
    pub title: String,
    /// What it rehearses (a scenario's description), or nothing.
    pub about: String,
    /// The OLT's report (None: it wrote none, and `problem` says why).
    pub report: Option<&'a Report>,
    /// A scenario's verdict: every expectation held (None: no expectations, an OLT's page).
    pub passed: Option<bool>,
    /// A scenario's checks.
    pub checks: Vec<CheckLine>,
    /// Faults and events to mark.
    pub marks: Vec<Mark>,
    /// The faults and deaths as they happened, in words (a scenario's notes).
    pub notes: Vec<String>,
    /// What went wrong when there is no report.
    pub problem: Option<String>,
}

impl<'a> Page<'a> {
    /// The page of an OLT's report alone (`olt rollout --html`).
    pub fn of_report(report: &'a Report) -> Page<'a> {
        Page {
            title: "olt rollout".into(),
            report: Some(report),
            ..Page::default()
        }
    }
}

/// `s` made safe as HTML text and as an attribute value (quoted with `"` or `'`).
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => o.push('\u{FFFD}'),
            c => o.push(c),
        }
    }
    o
}

/// Why the page cannot be written at `path`, checked before the work: its folder must be
/// there, and the path must not be a folder.
pub fn check_output(path: &std::path::Path) -> Result<(), String> {
    if path.is_dir() {
        return Err("it is a folder: give a file name, e.g. rollout.html".into());
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    if !parent.is_dir() {
        return Err(format!("its folder {} does not exist", parent.display()));
    }
    Ok(())
}

/// The phases in the order a rollout goes through them, with their colours and the words of
/// the legend.
const PHASES: &[(&str, &str, &str)] = &[
    ("discover", "#9aa5b1", "discover (Get both software images)"),
    ("start", "#6c8ebf", "Start software download"),
    ("download", "#2f6fdf", "download (windows of sections)"),
    ("end", "#e69b22", "End software download"),
    (
        "busy",
        "#f4d03f",
        "busy (End answered device busy: flash being written)",
    ),
    ("verify", "#b08d57", "verify (Get: image valid)"),
    ("activate", "#8e44ad", "Activate image"),
    (
        "reboot",
        "#d35fb7",
        "reboot (waiting for the ONU on its new image)",
    ),
    ("health", "#16a085", "health gate"),
    ("held", "#7fb3a6", "held (waiting for its wave's commit)"),
    ("commit", "#1e8449", "Commit image"),
    ("verify-commit", "#58b368", "verify (Get: image committed)"),
    ("abort", "#7f8c8d", "abort (End with size 0)"),
    (
        "rollback",
        "#a04000",
        "rollback (Activate the committed image)",
    ),
    (
        "inspect",
        "#cfd6dd",
        "inspect (Get both images after a failure)",
    ),
];

fn phase_colour(name: &str) -> &'static str {
    PHASES
        .iter()
        .find(|(n, _, _)| *n == name)
        .map_or("#555555", |(_, c, _)| c)
}

fn result_class(r: OnuResult) -> &'static str {
    match r {
        OnuResult::Upgraded | OnuResult::Downloaded | OnuResult::Activated | OnuResult::Read => {
            "good"
        }
        OnuResult::Skipped | OnuResult::Pending | OnuResult::Untouched => "neutral",
        OnuResult::Failed | OnuResult::Unfinished | OnuResult::Halted | OnuResult::Refused => "bad",
    }
}

/// A failure's result: its end is marked on the timeline with its reason.
fn is_failure(r: OnuResult) -> bool {
    result_class(r) == "bad"
}

fn onu_name(o: &OnuReport, several: bool) -> String {
    if several {
        format!("ONU {}/{}", o.pon.0, o.id)
    } else {
        format!("ONU {}", o.id)
    }
}

/// ONU-IDs as ranges: `1-4, 7`.
fn ranges(ids: &[String]) -> String {
    ids.join(", ")
}

fn ids_text(onus: &[&OnuReport], several: bool) -> String {
    if several {
        return ranges(
            &onus
                .iter()
                .map(|o| format!("{}/{}", o.pon.0, o.id))
                .collect::<Vec<_>>(),
        );
    }
    let set: BTreeSet<u16> = onus.iter().map(|o| o.id).collect();
    let mut parts = Vec::new();
    let mut it = set.iter().copied().peekable();
    while let Some(a) = it.next() {
        let mut b = a;
        while it.peek() == Some(&(b + 1)) {
            b = it.next().unwrap_or(b);
        }
        parts.push(if a == b {
            a.to_string()
        } else {
            format!("{a}-{b}")
        });
    }
    ranges(&parts)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

const STYLE: &str = r#"
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em;color:#1c2430;background:#fff}
h1{font-size:1.5em;margin:0 0 .2em}h2{font-size:1.15em;margin:1.6em 0 .5em;border-bottom:1px solid #d8dee4}
p.about{margin:.2em 0 .8em;color:#44505c}
.verdict{display:inline-block;padding:.15em .6em;border-radius:4px;font-weight:600;color:#fff}
.verdict.good{background:#1e8449}.verdict.bad{background:#c0392b}.verdict.neutral{background:#6b7785}
table{border-collapse:collapse;margin:.4em 0}th,td{border:1px solid #d8dee4;padding:.2em .55em;text-align:left;vertical-align:top}
th{background:#f3f5f7}td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.good td.result{color:#1e8449;font-weight:600}tr.bad td.result{color:#c0392b;font-weight:600}
.ok{color:#1e8449;font-weight:600}.notok{color:#c0392b;font-weight:600}
.legend span{display:inline-block;margin:0 1em .3em 0;white-space:nowrap}
.legend i{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:-.1em;border-radius:2px}
.scroll{overflow:auto;max-height:80vh;border:1px solid #d8dee4}
svg text{font:11px system-ui,sans-serif;fill:#1c2430}
svg .axis line{stroke:#c5ccd3}svg .axis text{fill:#5b6773}
svg g.onu:hover rect.row,svg g.onu.picked rect.row{fill:#fff3c4}
svg g.onu.hidden{display:none}
svg .fault{fill:#e3001b;stroke:#1c2430;stroke-width:.8}svg .event{fill:#1c2430;stroke:#fff;stroke-width:.6}
svg .failure{stroke:#c0392b;stroke-width:2.2}
svg .whole{stroke:#c0392b;stroke-dasharray:4 3}
pre.notes{background:#f6f8fa;padding:.6em;overflow:auto}
#filter{margin:.3em 0}
"#;

/// The page's script: hover and click highlight, a filter by result, and the ready mark.
/// Errors in it are shown on the page (`#script-errors`), so that a broken page says so.
const SCRIPT: &str = r#"
(function(){
  var rows = document.querySelectorAll('g.onu');
  var filter = document.getElementById('filter');
  if (filter) {
    filter.addEventListener('change', function(){
      var want = filter.value;
      rows.forEach(function(g){
        g.classList.toggle('hidden', want !== 'all' && g.getAttribute('data-result') !== want);
      });
      document.querySelectorAll('#onus tbody tr').forEach(function(tr){
        tr.style.display = (want === 'all' || tr.getAttribute('data-result') === want) ? '' : 'none';
      });
    });
  }
  rows.forEach(function(g){
    g.addEventListener('click', function(){
      var id = g.getAttribute('data-onu');
      rows.forEach(function(o){ o.classList.toggle('picked', o === g && !o.classList.contains('picked')); });
      var tr = document.getElementById('onu-' + id);
      if (tr) { tr.scrollIntoView({block: 'nearest'}); }
    });
  });
  document.getElementById('shown').textContent = String(rows.length);
  document.documentElement.setAttribute('data-ready', 'yes');
})();
"#;

/// The first script: any error of the page's script is written on the page.
const CATCH: &str = r#"
window.addEventListener('error', function(e){
  var p = document.getElementById('script-errors');
  if (p) { p.hidden = false; p.textContent += 'script error: ' + e.message + '\n'; }
});
"#;

/// The page, as one HTML document.
pub fn render(page: &Page<'_>) -> String {
    let mut o = String::with_capacity(64 * 1024);
    let title = escape(&page.title);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n<script>{CATCH}</script>\n</head>\n<body>\n\
         <pre id=\"script-errors\" class=\"notok\" hidden></pre>\n<h1>{title}</h1>\n"
    );
    if !page.about.is_empty() {
        let _ = writeln!(o, "<p class=\"about\">{}</p>", escape(&page.about));
    }
    headline(&mut o, page);
    match page.report {
        Some(r) => {
            let several = r.pons.len() > 1;
            summary_table(&mut o, r, several);
            checks(&mut o, &page.checks);
            window_progress(&mut o, r);
            timeline(&mut o, r, &page.marks, several);
            onu_table(&mut o, r, several);
        }
        None => {
            let _ = writeln!(
                o,
                "<h2>No report</h2>\n<p class=\"notok\" id=\"problem\">The OLT wrote no report: {}</p>",
                escape(page.problem.as_deref().unwrap_or("no reason was given"))
            );
            checks(&mut o, &page.checks);
            o.push_str("<p>ONUs drawn: <span id=\"shown\">0</span></p>\n");
        }
    }
    if !page.notes.is_empty() {
        o.push_str(
            "<h2>Faults and deaths, as they happened</h2>\n<pre class=\"notes\" id=\"notes\">",
        );
        for n in &page.notes {
            o.push_str(&escape(n));
            o.push('\n');
        }
        o.push_str("</pre>\n");
    }
    let _ = write!(o, "<script>{SCRIPT}</script>\n</body>\n</html>\n");
    o
}

/// The verdict and the rollout in one line.
fn headline(o: &mut String, page: &Page<'_>) {
    o.push_str("<p id=\"headline\">");
    if let Some(passed) = page.passed {
        let _ = write!(
            o,
            "<span class=\"verdict {}\">{}</span> ",
            if passed { "good" } else { "bad" },
            if passed {
                "every expectation held"
            } else {
                "an expectation failed"
            }
        );
    }
    if let Some(r) = page.report {
        let outcome = r.campaign.outcome.word();
        let _ = write!(
            o,
            "<span class=\"verdict {}\">campaign {}</span> {} rollout of {} ({} bytes) to {} in {:.1} s",
            if outcome == "completed" {
                "good"
            } else {
                "bad"
            },
            escape(outcome),
            match r.mode {
                Mode::Multicast => "Multicast",
                Mode::Unicast => "Unicast",
            },
            escape(&r.image.version),
            r.image.size,
            plural(r.onus.len(), "ONU", "ONUs"),
            r.duration_s
        );
        if r.pons.len() > 1 {
            let _ = write!(o, " on {} PON ports", r.pons.len());
        }
        if !r.started_at.is_empty() {
            let _ = write!(o, ", started {}", escape(&r.started_at));
        }
        if let Some(why) = &r.campaign.halt_reason {
            let _ = write!(o, ". Halted: {}", escape(why));
        }
        o.push('.');
    }
    o.push_str("</p>\n");
}

/// The summary table: ONUs by result and the images they run.
fn summary_table(o: &mut String, r: &Report, several: bool) {
    let mut rows: BTreeMap<(OnuResult, String, String), Vec<&OnuReport>> = BTreeMap::new();
    for u in &r.onus {
        let v = |x: &Option<String>| x.clone().unwrap_or_else(|| "not read".into());
        rows.entry((u.result, v(&u.committed_version), v(&u.active_version)))
            .or_default()
            .push(u);
    }
    o.push_str(
        "<h2>Summary</h2>\n<table id=\"summary\">\n<thead><tr><th>result</th><th>committed</th>\
         <th>active</th><th>count</th><th>ONUs</th></tr></thead>\n<tbody>\n",
    );
    for ((result, committed, active), onus) in &rows {
        let _ = writeln!(
            o,
            "<tr class=\"{}\" data-result=\"{}\"><td class=\"result\">{}</td><td>{}</td><td>{}</td>\
             <td class=\"n\">{}</td><td>{}</td></tr>",
            result_class(*result),
            result.word(),
            result.word(),
            escape(committed),
            escape(active),
            onus.len(),
            escape(&ids_text(onus, several))
        );
    }
    o.push_str("</tbody>\n</table>\n");
}

fn checks(o: &mut String, checks: &[CheckLine]) {
    if checks.is_empty() {
        return;
    }
    o.push_str("<h2>Checks</h2>\n<table id=\"checks\">\n<tbody>\n");
    for c in checks {
        let _ = writeln!(
            o,
            "<tr><td class=\"{}\">{}</td><td>{}</td></tr>",
            if c.ok { "ok" } else { "notok" },
            if c.ok { "held" } else { "failed" },
            escape(&c.text)
        );
    }
    o.push_str("</tbody>\n</table>\n");
}

/// Each PON port's window progress: the share of the image the ONUs hold, the share of the
/// group's windows sent, and the repairs, over time.
fn window_progress(o: &mut String, r: &Report) {
    o.push_str("<h2>Window progress</h2>\n");
    let t_max = r.duration_s.max(0.001);
    for p in &r.pons {
        let last = p.windows.last();
        let _ = write!(
            o,
            "<p>{}{}: ",
            escape(&p.pon.to_string()),
            if p.group.is_empty() {
                String::new()
            } else {
                format!(", group {}", escape(&p.group))
            }
        );
        match last {
            Some(w) if w.of > 0 => {
                let _ = write!(
                    o,
                    "the ONUs hold {} of {} windows ({:.0} %)",
                    w.held,
                    w.of,
                    100.0 * w.held as f64 / w.of as f64
                );
                if w.group_windows > 0 {
                    let _ = write!(
                        o,
                        "; {} of the group's {} windows sent to the group",
                        w.group_sent, w.group_windows
                    );
                }
                let _ = writeln!(
                    o,
                    "; {} sent again.</p>",
                    plural(w.repairs as usize, "window", "windows")
                );
            }
            _ => o.push_str("no window was delivered.</p>\n"),
        }
        if p.windows.is_empty() {
            continue;
        }
        let (w, h, left, top) = (900.0, 150.0, 40.0, 10.0);
        let x = |t: f64| left + w * (t / t_max).clamp(0.0, 1.0);
        let y = |f: f64| top + h * (1.0 - f.clamp(0.0, 1.0));
        let _ = write!(
            o,
            "<svg class=\"windows\" data-pon=\"{}\" width=\"{}\" height=\"{}\" role=\"img\" \
             aria-label=\"window progress of {}\">\n<g class=\"axis\">",
            p.pon.0,
            w + left + 20.0,
            h + top + 30.0,
            escape(&p.pon.to_string())
        );
        for pct in [0.0, 0.5, 1.0] {
            let y0 = y(pct);
            let _ = write!(
                o,
                "<line x1=\"{left}\" x2=\"{}\" y1=\"{y0:.1}\" y2=\"{y0:.1}\"/><text x=\"2\" y=\"{:.1}\">{:.0} %</text>",
                left + w,
                y0 + 4.0,
                pct * 100.0,
            );
        }
        axis_ticks(o, t_max, left, w, top + h + 16.0);
        o.push_str("</g>\n");
        let line = |f: &dyn Fn(&crate::report::WindowSample) -> Option<f64>| -> String {
            p.windows
                .iter()
                .filter_map(|s| f(s).map(|v| format!("{:.1},{:.1}", x(s.t_s), y(v))))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let held = line(&|s| (s.of > 0).then(|| s.held as f64 / s.of as f64));
        let sent = line(&|s| {
            (s.group_windows > 0).then(|| f64::from(s.group_sent) / f64::from(s.group_windows))
        });
        let _ = writeln!(
            o,
            "<polyline class=\"held\" fill=\"none\" stroke=\"#2f6fdf\" stroke-width=\"2\" points=\"{held}\"><title>share of the image the ONUs hold</title></polyline>"
        );
        if !sent.is_empty() {
            let _ = writeln!(
                o,
                "<polyline class=\"sent\" fill=\"none\" stroke=\"#e69b22\" stroke-width=\"1.5\" stroke-dasharray=\"5 3\" points=\"{sent}\"><title>share of the group's windows sent to the group</title></polyline>"
            );
        }
        let mut repairs = 0;
        for s in &p.windows {
            if s.repairs > repairs {
                let _ = write!(
                    o,
                    "<line class=\"repair\" x1=\"{x0:.1}\" x2=\"{x0:.1}\" y1=\"{}\" y2=\"{}\" stroke=\"#c0392b\"><title>{:.2} s: {} sent again so far</title></line>",
                    top + h - 8.0,
                    top + h,
                    s.t_s,
                    plural(s.repairs as usize, "window", "windows"),
                    x0 = x(s.t_s)
                );
                repairs = s.repairs;
            }
        }
        o.push_str("</svg>\n");
    }
    o.push_str(
        "<p class=\"legend\"><span><i style=\"background:#2f6fdf\"></i>share of the image the ONUs hold</span>\
         <span><i style=\"background:#e69b22\"></i>share of the group's windows sent to the group</span>\
         <span><i style=\"background:#c0392b\"></i>a window sent again (tick)</span></p>\n",
    );
}

/// Ticks of a time axis from 0 to `t_max` seconds, at `y`.
fn axis_ticks(o: &mut String, t_max: f64, left: f64, w: f64, y: f64) {
    let raw = t_max / 8.0;
    let step = [
        0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
        600.0, 1800.0, 3600.0,
    ]
    .into_iter()
    .find(|s| *s >= raw)
    .unwrap_or(7200.0);
    let mut t = 0.0;
    while t <= t_max + 1e-9 {
        let x = left + w * t / t_max;
        let _ = write!(
            o,
            "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"middle\">{} s</text>",
            if step < 1.0 {
                format!("{t:.2}")
            } else {
                format!("{t:.0}")
            }
        );
        t += step;
    }
}

/// The timeline: a row per ONU, its phases as bars, faults and events as marks, failures marked.
fn timeline(o: &mut String, r: &Report, marks: &[Mark], several: bool) {
    let end_of = |u: &OnuReport| u.timeline.last().map_or(0.0, |p| p.start_s + p.duration_s);
    let t_max = r
        .onus
        .iter()
        .map(end_of)
        .chain(marks.iter().map(|m| m.t_s))
        .fold(r.duration_s, f64::max)
        .max(0.001)
        * 1.02;
    let (label, w, row, top) = (150.0, 880.0, 16.0, 22.0);
    let h = top + row * r.onus.len() as f64 + 24.0;
    let x = |t: f64| label + w * (t / t_max).clamp(0.0, 1.0);
    let results: BTreeSet<OnuResult> = r.onus.iter().map(|u| u.result).collect();
    o.push_str("<h2>Timeline</h2>\n<p>Each row is one ONU, as the OLT saw it; time from the rollout's start. \
                Hover a bar or a mark for its words; click a row to find it in the table below.</p>\n");
    o.push_str("<p class=\"legend\">");
    let used: BTreeSet<&str> = r
        .onus
        .iter()
        .flat_map(|u| u.timeline.iter().map(|p| p.phase.as_str()))
        .collect();
    for (name, colour, words) in PHASES {
        if used.contains(name) {
            let _ = write!(
                o,
                "<span><i style=\"background:{colour}\"></i>{}</span>",
                escape(words)
            );
        }
    }
    o.push_str(
        "<span><i style=\"background:#e3001b\"></i>&#9650; a fault</span>\
         <span><i style=\"background:#1c2430\"></i>&#9670; an ONU event</span>\
         <span>&#10005; where a failure ended, with its reason</span></p>\n",
    );
    let _ = write!(
        o,
        "<p id=\"filter-line\">Show <select id=\"filter\"><option value=\"all\">every ONU</option>"
    );
    for res in &results {
        let _ = write!(o, "<option value=\"{0}\">{0} only</option>", res.word());
    }
    o.push_str("</select> (<span id=\"shown\">?</span> rows)</p>\n<div class=\"scroll\">\n");
    let _ = write!(
        o,
        "<svg id=\"timeline\" width=\"{}\" height=\"{h:.0}\" role=\"img\" aria-label=\"timeline of every ONU\">\n<g class=\"axis\">",
        label + w + 20.0
    );
    axis_ticks(o, t_max, label, w, 14.0);
    axis_ticks(o, t_max, label, w, h - 6.0);
    o.push_str("</g>\n");
    for (i, u) in r.onus.iter().enumerate() {
        let y0 = top + row * i as f64;
        let name = onu_name(u, several);
        let key = format!("{}-{}", u.pon.0, u.id);
        let _ = write!(
            o,
            "<g class=\"onu {}\" id=\"row-{key}\" data-onu=\"{key}\" data-result=\"{}\">\
             <rect class=\"row\" x=\"0\" y=\"{y0:.1}\" width=\"{}\" height=\"{row}\" fill=\"{}\"/>\
             <text x=\"4\" y=\"{:.1}\">{} <tspan class=\"{}\">{}</tspan></text>",
            result_class(u.result),
            u.result.word(),
            label + w + 20.0,
            if i % 2 == 0 { "#ffffff" } else { "#f7f9fb" },
            y0 + 12.0,
            escape(&name),
            if is_failure(u.result) { "notok" } else { "ok" },
            u.result.word()
        );
        for p in &u.timeline {
            let (x0, x1) = (x(p.start_s), x(p.start_s + p.duration_s));
            let _ = write!(
                o,
                "<rect class=\"phase\" data-phase=\"{}\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\">\
                 <title>{}: {} from {:.2} s to {:.2} s ({:.2} s)</title></rect>",
                escape(&p.phase),
                y0 + 2.0,
                (x1 - x0).max(1.0),
                row - 4.0,
                phase_colour(&p.phase),
                escape(&name),
                escape(&p.phase),
                p.start_s,
                p.start_s + p.duration_s,
                p.duration_s
            );
        }
        for m in marks.iter().filter(|m| m.onu == Some((u.pon, u.id))) {
            let (mx, my) = (x(m.t_s), y0 + row / 2.0);
            let shape = match m.kind {
                MarkKind::Fault => format!(
                    "<path class=\"fault\" d=\"M{:.1} {:.1} L{:.1} {:.1} L{:.1} {:.1} Z\">",
                    mx,
                    my - 6.0,
                    mx - 5.5,
                    my + 5.0,
                    mx + 5.5,
                    my + 5.0
                ),
                MarkKind::Event => format!(
                    "<path class=\"event\" d=\"M{:.1} {:.1} L{:.1} {:.1} L{:.1} {:.1} L{:.1} {:.1} Z\">",
                    mx,
                    my - 4.0,
                    mx + 4.0,
                    my,
                    mx,
                    my + 4.0,
                    mx - 4.0,
                    my
                ),
            };
            let _ = write!(
                o,
                "<g class=\"mark {}\" data-kind=\"{}\">{shape}<title>{:.2} s, {}: {}</title></path></g>",
                m.kind.class(),
                m.kind.class(),
                m.t_s,
                escape(&name),
                escape(&m.words)
            );
        }
        if is_failure(u.result) {
            let (fx, fy) = (x(end_of(u)), y0 + row / 2.0);
            let _ = write!(
                o,
                "<g class=\"failure-mark\"><path class=\"failure\" d=\"M{:.1} {:.1} L{:.1} {:.1} M{:.1} {:.1} L{:.1} {:.1}\">\
                 <title>{}: {}{}</title></path></g>",
                fx - 4.0,
                fy - 4.0,
                fx + 4.0,
                fy + 4.0,
                fx - 4.0,
                fy + 4.0,
                fx + 4.0,
                fy - 4.0,
                escape(&name),
                u.result.word(),
                if u.reason.is_empty() {
                    String::new()
                } else {
                    format!(": {}", escape(&u.reason))
                }
            );
        }
        o.push_str("</g>\n");
    }
    for m in marks.iter().filter(|m| m.onu.is_none()) {
        let mx = x(m.t_s);
        let _ = writeln!(
            o,
            "<g class=\"mark whole-rollout\" data-kind=\"{}\"><line class=\"whole\" x1=\"{mx:.1}\" x2=\"{mx:.1}\" y1=\"{top}\" y2=\"{:.1}\">\
             <title>{:.2} s: {}</title></line></g>",
            m.kind.class(),
            h - 20.0,
            m.t_s,
            escape(&m.words)
        );
    }
    o.push_str("</svg>\n</div>\n");
}

/// Every ONU in a table: result, why, versions, phases and counts.
fn onu_table(o: &mut String, r: &Report, several: bool) {
    o.push_str(
        "<h2>Every ONU</h2>\n<table id=\"onus\">\n<thead><tr><th>ONU</th><th>serial number</th><th>wave</th><th>result</th>\
         <th>why</th><th>from</th><th>committed</th><th>active</th><th>phases</th>\
         <th>retries</th><th>timeouts</th><th>busy</th><th>windows sent again</th><th>restarts</th></tr></thead>\n<tbody>\n",
    );
    for u in &r.onus {
        let v = |x: &Option<String>| escape(x.as_deref().unwrap_or("not read"));
        let phases: Vec<String> = u
            .timeline
            .iter()
            .map(|p| format!("{} {:.2} s", escape(&p.phase), p.duration_s))
            .collect();
        let _ = writeln!(
            o,
            "<tr id=\"onu-{}-{}\" class=\"{}\" data-result=\"{}\"><td>{}</td><td class=\"serial\">{}</td><td class=\"n\">{}</td>\
             <td class=\"result\">{}</td><td class=\"reason\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            u.pon.0,
            u.id,
            result_class(u.result),
            u.result.word(),
            escape(&onu_name(u, several)),
            v(&u.serial),
            u.wave.map_or("-".to_string(), |w| w.to_string()),
            u.result.word(),
            escape(&u.reason),
            v(&u.from_version),
            v(&u.committed_version),
            v(&u.active_version),
            phases.join(", "),
            u.retries,
            u.timeouts,
            u.busy,
            u.repaired_windows,
            u.restarts
        );
    }
    o.push_str("</tbody>\n</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{
        CampaignOutcome, CampaignReport, ImageReport, PhaseReport, PonReport, Totals, WindowSample,
    };

    fn onu(id: u16, result: OnuResult, reason: &str) -> OnuReport {
        OnuReport {
            pon: PonPort(1),
            id,
            serial: Some(format!("LABS{id:08X}")),
            result,
            reason: reason.into(),
            wave: Some(1),
            model: None,
            from_version: Some("V1.0".into()),
            to_version: "V2.0".into(),
            committed_version: Some(
                if result == OnuResult::Upgraded {
                    "V2.0"
                } else {
                    "V1.0"
                }
                .into(),
            ),
            active_version: Some("V1.0".into()),
            retries: 0,
            timeouts: 0,
            repaired_windows: 0,
            busy: 0,
            restarts: 0,
            frames: 0,
            frames_with_ar: 0,
            phases_s: BTreeMap::new(),
            timeline: vec![
                PhaseReport {
                    phase: "download".into(),
                    start_s: 0.1,
                    duration_s: 1.0,
                },
                PhaseReport {
                    phase: "busy".into(),
                    start_s: 1.1,
                    duration_s: 0.3,
                },
            ],
        }
    }

    fn report(onus: Vec<OnuReport>) -> Report {
        Report {
            format: Report::FORMAT.into(),
            format_version: Report::FORMAT_VERSION,
            tool_version: "0.1.0".into(),
            started_at: "2026-12-01T20:00:00.000Z".into(),
            listen: "127.0.0.1:47001".into(),
            tci_seed: 1,
            mode: Mode::Multicast,
            image: ImageReport {
                version: "V2.0<b>".into(),
                size: 4096,
                sha256: "00".into(),
            },
            duration_s: 2.0,
            campaign: CampaignReport {
                outcome: CampaignOutcome::Completed,
                halt_reason: None,
                waves: vec![],
            },
            totals: Totals {
                onus: onus.len(),
                ..Totals::default()
            },
            pons: vec![PonReport {
                pon: PonPort(1),
                group: "239.255.0.1:47000".into(),
                campaign: CampaignReport {
                    outcome: CampaignOutcome::Completed,
                    halt_reason: None,
                    waves: vec![],
                },
                totals: Totals::default(),
                windows: vec![
                    WindowSample {
                        t_s: 0.0,
                        held: 0,
                        of: 8,
                        group_sent: 0,
                        group_windows: 2,
                        repairs: 0,
                    },
                    WindowSample {
                        t_s: 1.0,
                        held: 8,
                        of: 8,
                        group_sent: 2,
                        group_windows: 2,
                        repairs: 1,
                    },
                ],
                packages: Default::default(),
            }],
            onus,
        }
    }

    #[test]
    fn escape_leaves_no_markup() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(escape("a\u{0}b"), "a\u{FFFD}b");
    }

    #[test]
    fn every_string_from_outside_is_escaped() {
        let evil = "<img src=x onerror=alert(1)>";
        let r = report(vec![onu(1, OnuResult::Failed, evil)]);
        let page = Page {
            title: format!("t {evil}"),
            about: evil.into(),
            report: Some(&r),
            passed: Some(false),
            checks: vec![CheckLine {
                text: evil.into(),
                ok: false,
            }],
            marks: vec![Mark {
                t_s: 0.5,
                onu: Some((PonPort(1), 1)),
                kind: MarkKind::Fault,
                words: evil.into(),
            }],
            notes: vec![evil.into()],
            problem: None,
        };
        let html = render(&page);
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("V2.0<b>"), "the version is escaped too");
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    }

    #[test]
    fn every_onu_has_its_row_its_phases_and_its_failure() {
        let mut onus: Vec<OnuReport> = (1..=128).map(|i| onu(i, OnuResult::Upgraded, "")).collect();
        onus[2] = onu(3, OnuResult::Failed, "no answer to End software download");
        let r = report(onus);
        let page = Page {
            marks: vec![Mark {
                t_s: 0.7,
                onu: Some((PonPort(1), 3)),
                kind: MarkKind::Fault,
                words: "power cut during the busy phase".into(),
            }],
            ..Page::of_report(&r)
        };
        let html = render(&page);
        for i in 1..=128 {
            assert!(
                html.contains(&format!("id=\"row-1-{i}\"")),
                "row of ONU {i}"
            );
            assert!(
                html.contains(&format!("id=\"onu-1-{i}\"")),
                "table row of ONU {i}"
            );
        }
        assert_eq!(html.matches("data-phase=\"download\"").count(), 128);
        assert_eq!(html.matches("data-phase=\"busy\"").count(), 128);
        assert_eq!(html.matches("class=\"failure-mark\"").count(), 1);
        assert!(html.contains("ONU 3: failed: no answer to End software download"));
        assert!(
            html.contains("<td class=\"serial\">LABS00000003</td>"),
            "{html}"
        );
        assert!(html.contains("ONU 3: power cut during the busy phase"));
        assert!(
            html.contains("<td class=\"n\">127</td><td>1-2, 4-128</td>"),
            "the summary's ranges"
        );
        assert!(html.contains("the ONUs hold 8 of 8 windows (100 %)"));
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "nothing fetched"
        );
    }

    #[test]
    fn a_page_without_a_report_says_why() {
        let page = Page {
            title: "t".into(),
            problem: Some("none found; the OLT exited with code 2".into()),
            ..Page::default()
        };
        let html = render(&page);
        assert!(html.contains("The OLT wrote no report: none found; the OLT exited with code 2"));
        assert!(
            html.contains("id=\"shown\""),
            "the script finds what it writes"
        );
    }
}
