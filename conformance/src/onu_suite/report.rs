//! What the ONU suite reports: a verdict for every check of the catalogue, in the order the
//! checks ran, and the same list three ways: a table for a terminal ([`Report::table`]), JUnit
//! XML for CI systems ([`Report::junit`]), and JSON (the [`Report`] itself, through serde).
//!
//! A report is complete whatever became of the target: a check that could not run has a
//! verdict too (skipped with why, or an error when the target stopped answering), and
//! [`Report::end`] says how the run ended.

use std::borrow::Cow;

use pon::transport::TransportKind;
use serde::{Deserialize, Serialize};

/// The name of the JSON format, in its `format` field.
pub const FORMAT: &str = "omci-lab-onu-conformance";
/// The version of the JSON format, in its `format_version` field. Version 1 was the report
/// before these fields (no `error` verdict, no `end`, no `transport`).
pub const FORMAT_VERSION: u32 = 2;
/// The JUnit suite's name: the same on every run (no address, no port in it), so that a CI
/// system follows each test case from run to run.
pub const JUNIT_SUITE: &str = "ONU conformance";

/// One check's verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum Verdict {
    /// The rule holds.
    Pass,
    /// The rule is broken.
    Fail {
        /// What G.988 (or practice) expects, in G.988's words.
        expected: String,
        /// What the ONU did.
        observed: String,
    },
    /// The check could not judge the target: what it needs is missing (a message the ONU
    /// showed no sign of implementing, a call in progress, an earlier step that failed).
    Skip {
        /// Why.
        why: String,
    },
    /// The check could not run to a verdict because the target stopped answering, or the
    /// suite could not go on.
    Error {
        /// What happened, e.g. "the target stopped answering during DLS-04".
        why: String,
    },
}

/// One check of the suite, as it ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Stable id, e.g. `SWI-01` (the catalogue's, [`crate::CATALOGUE`]).
    pub id: Cow<'static, str>,
    /// What it checks.
    pub title: Cow<'static, str>,
    /// Where the rule comes from: a G.988 clause, or "industry practice", or this lab.
    pub source: Cow<'static, str>,
    /// What was sent.
    pub sent: String,
    /// The verdict.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// How long it took (s, on the suite's clock).
    pub seconds: f64,
}

impl Check {
    /// The topic of the id (`SWI` of `SWI-01`).
    pub fn topic(&self) -> &str {
        self.id.split('-').next().unwrap_or(&self.id)
    }
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "end", rename_all = "lowercase")]
pub enum RunEnd {
    /// The run is not over (a report asked for on the way).
    Running,
    /// Every check ran with a live target (each has its verdict).
    Completed,
    /// The target never answered: every check is an error.
    Unreachable {
        /// What was asked.
        why: String,
    },
    /// The target answered, then stopped: the checks after that are errors.
    Lost {
        /// The check during (or after) which it stopped answering.
        during: String,
        /// In a sentence.
        why: String,
    },
    /// The suite could not go on (a request it could not encode: a bug of the suite).
    Internal {
        /// What went wrong.
        why: String,
    },
}

/// The suite's results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The format's name, [`FORMAT`].
    pub format: Cow<'static, str>,
    /// The format's version, [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The ONU, as the caller named it (e.g. `ONU 1 at 127.0.0.1:46001`).
    pub target: String,
    /// How the datagrams were framed.
    pub transport: TransportKind,
    /// How the run ended.
    #[serde(flatten)]
    pub end: RunEnd,
    /// Every check of the catalogue, in the order they ran.
    pub checks: Vec<Check>,
    /// Checks that passed.
    pub passed: usize,
    /// Checks that failed.
    pub failed: usize,
    /// Checks that could not judge the target.
    pub skipped: usize,
    /// Checks that could not run to a verdict (the target stopped answering).
    pub errors: usize,
}

impl Report {
    /// The report of `checks` (counted here, so that the counts always agree with the list).
    pub fn new(
        target: String,
        transport: TransportKind,
        end: RunEnd,
        checks: Vec<Check>,
    ) -> Report {
        let count = |f: fn(&Verdict) -> bool| checks.iter().filter(|c| f(&c.verdict)).count();
        let passed = count(|v| matches!(v, Verdict::Pass));
        let failed = count(|v| matches!(v, Verdict::Fail { .. }));
        let skipped = count(|v| matches!(v, Verdict::Skip { .. }));
        let errors = count(|v| matches!(v, Verdict::Error { .. }));
        Report {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            target,
            transport,
            end,
            checks,
            passed,
            failed,
            skipped,
            errors,
        }
    }

    /// The run's end in a line, for the table and JUnit.
    pub fn end_line(&self) -> String {
        match &self.end {
            RunEnd::Running => "still running".into(),
            RunEnd::Completed => "completed".into(),
            RunEnd::Unreachable { why } => format!("target unreachable: {why}"),
            RunEnd::Lost { why, .. } => format!("target lost: {why}"),
            RunEnd::Internal { why } => format!("the suite stopped: {why}"),
        }
    }

    /// JUnit XML: one testcase per check. The suite's name is [`JUNIT_SUITE`], the target
    /// and the run's end are properties; a testcase's `classname` is `onu-conformance-TOPIC`
    /// (no dots, which CI tools split into packages), its name the id and title; its source
    /// and what was sent are in its `system-out`.
    pub fn junit(&self) -> String {
        let total: f64 = self.checks.iter().map(|c| c.seconds).sum();
        let counts = format!(
            "tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{total:.3}\"",
            self.checks.len(),
            self.failed,
            self.errors,
            self.skipped
        );
        let transport = match self.transport {
            TransportKind::Lab => "lab",
            TransportKind::Obbaa => "obbaa",
        };
        let mut o = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"omci-lab {JUNIT_SUITE}\" {counts}>\n  <testsuite name=\"{JUNIT_SUITE}\" {counts}>\n    <properties>\n      <property name=\"target\" value=\"{}\"/>\n      <property name=\"transport\" value=\"{transport}\"/>\n      <property name=\"end\" value=\"{}\"/>\n    </properties>\n",
            xml(&self.target),
            xml(&self.end_line()),
        );
        for c in &self.checks {
            o += &format!(
                "    <testcase classname=\"onu-conformance-{}\" name=\"{} {}\" time=\"{:.3}\">\n",
                xml(c.topic()),
                c.id,
                xml(&c.title),
                c.seconds
            );
            match &c.verdict {
                Verdict::Pass => {}
                Verdict::Fail { expected, observed } => {
                    o += &format!(
                        "      <failure message=\"expected {}; observed {}\" type=\"rule broken\">expected {}\nobserved {}</failure>\n",
                        xml(expected),
                        xml(observed),
                        xml(expected),
                        xml(observed)
                    );
                }
                Verdict::Skip { why } => {
                    o += &format!("      <skipped message=\"{}\"/>\n", xml(why));
                }
                Verdict::Error { why } => {
                    o += &format!(
                        "      <error message=\"{}\" type=\"no verdict\"/>\n",
                        xml(why)
                    );
                }
            }
            o += &format!(
                "      <system-out>source: {}\nsent: {}</system-out>\n    </testcase>\n",
                xml(&c.source),
                xml(&c.sent)
            );
        }
        o += "  </testsuite>\n</testsuites>\n";
        o
    }

    /// A table for a terminal, and the count line.
    pub fn table(&self) -> String {
        let mut o = format!("ONU conformance: {}\n", self.target);
        for c in &self.checks {
            let (word, more) = match &c.verdict {
                Verdict::Pass => ("pass", String::new()),
                Verdict::Fail { expected, observed } => (
                    "FAIL",
                    format!("\n          expected {expected}\n          observed {observed}"),
                ),
                Verdict::Skip { why } => ("skip", format!("\n          {why}")),
                Verdict::Error { why } => ("ERROR", format!("\n          {why}")),
            };
            o += &format!(
                "  {word:<5} {:<7} {}  [{}]{more}\n",
                c.id, c.title, c.source
            );
        }
        o += &format!(
            "{} checks: {} passed, {} failed, {} skipped, {} errors; {}\n",
            self.checks.len(),
            self.passed,
            self.failed,
            self.skipped,
            self.errors,
            self.end_line()
        );
        o
    }
}

/// Escapes text for an XML attribute or element (control characters other than tab and
/// newline, which XML 1.0 cannot carry, become U+FFFD).
fn xml(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' => c,
            c if c.is_control() => '\u{FFFD}',
            c => c,
        })
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(target: &str) -> Report {
        let check = |id: &'static str, verdict| Check {
            id: id.into(),
            title: "A <rule> & more".into(),
            source: "G.988 9.1.4".into(),
            sent: "Get \"both\"".into(),
            verdict,
            seconds: 0.25,
        };
        Report::new(
            target.into(),
            TransportKind::Lab,
            RunEnd::Lost {
                during: "DLS-04".into(),
                why: "the target stopped answering during DLS-04".into(),
            },
            vec![
                check("SWI-01", Verdict::Pass),
                check(
                    "SWI-02",
                    Verdict::Fail {
                        expected: "at most one committed".into(),
                        observed: "two".into(),
                    },
                ),
                check(
                    "ACT-02",
                    Verdict::Skip {
                        why: "no call".into(),
                    },
                ),
                check(
                    "DLS-04",
                    Verdict::Error {
                        why: "the target stopped answering during DLS-04".into(),
                    },
                ),
            ],
        )
    }

    #[test]
    fn the_counts_follow_the_verdicts() {
        let r = sample("ONU 1 at 127.0.0.1:46001");
        assert_eq!((r.passed, r.failed, r.skipped, r.errors), (1, 1, 1, 1));
    }

    #[test]
    fn json_names_its_format_and_reads_back() {
        let r = sample("ONU 1 at 127.0.0.1:46001");
        let text = serde_json::to_string(&r).unwrap();
        assert!(
            text.starts_with(r#"{"format":"omci-lab-onu-conformance","format_version":2,"target":"ONU 1 at 127.0.0.1:46001","transport":"lab","end":"lost","during":"DLS-04","#),
            "{text}"
        );
        assert!(
            text.contains(r#""id":"SWI-02","title":"A <rule> & more","source":"G.988 9.1.4","sent":"Get \"both\"","verdict":"fail","expected":"at most one committed","observed":"two","seconds":0.25"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#""verdict":"error","why":"the target stopped answering during DLS-04""#
            ),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Report>(&text).unwrap(), r);
    }

    #[test]
    fn junit_is_the_same_suite_on_every_run_and_escapes() {
        let a = sample("ONU 1 at 127.0.0.1:46001").junit();
        let b = sample("ONU 1 at 127.0.0.1:47777").junit();
        let suite = |x: &str| {
            x.lines()
                .find(|l| l.trim_start().starts_with("<testsuite "))
                .unwrap()
                .to_string()
        };
        assert_eq!(suite(&a), suite(&b));
        assert!(suite(&a).contains("name=\"ONU conformance\""), "{a}");
        assert!(!suite(&a).contains("46001"), "{a}");
        assert!(
            a.contains("<property name=\"target\" value=\"ONU 1 at 127.0.0.1:46001\"/>"),
            "{a}"
        );
        assert_eq!(a.matches("<testcase ").count(), 4);
        assert_eq!(a.matches("<failure ").count(), 1);
        assert_eq!(a.matches("<skipped ").count(), 1);
        assert_eq!(a.matches("<error ").count(), 1);
        assert!(a.contains("errors=\"1\""), "{a}");
        // No dots in a classname: CI tools would read them as packages.
        for l in a.lines().filter(|l| l.contains("classname=")) {
            let cls = l
                .split("classname=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            assert!(!cls.contains('.'), "{cls}");
        }
        assert!(a.contains("classname=\"onu-conformance-SWI\""), "{a}");
        assert!(
            a.contains("name=\"SWI-01 A &lt;rule&gt; &amp; more\""),
            "{a}"
        );
        assert!(
            a.contains("<system-out>source: G.988 9.1.4\nsent: Get &quot;both&quot;</system-out>"),
            "{a}"
        );
        assert!(!xml("a\u{1}b").contains('\u{1}'));
    }

    #[test]
    fn the_table_says_pass_fail_skip_error_and_counts() {
        let t = sample("ONU 1 at 127.0.0.1:46001").table();
        assert!(
            t.starts_with("ONU conformance: ONU 1 at 127.0.0.1:46001\n"),
            "{t}"
        );
        assert!(t.contains("  FAIL  SWI-02  A <rule> & more  [G.988 9.1.4]\n          expected at most one committed\n          observed two\n"), "{t}");
        assert!(
            t.contains("  ERROR DLS-04  A <rule> & more  [G.988 9.1.4]\n          the target stopped answering during DLS-04\n"),
            "{t}"
        );
        assert!(
            t.ends_with("4 checks: 1 passed, 1 failed, 1 skipped, 1 errors; target lost: the target stopped answering during DLS-04\n"),
            "{t}"
        );
    }
}
