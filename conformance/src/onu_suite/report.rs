//! What the ONU suite reports: a verdict per check, in the order the checks ran, and the same
//! list three ways: a table for a terminal ([`Report::table`]), JUnit XML for CI systems
//! ([`Report::junit`]), and JSON (the [`Report`] itself, through serde).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// One check's verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum Verdict {
    /// The rule holds.
    Pass,
    /// The rule is broken.
    Fail {
        /// What G.988 (or practice) expects.
        expected: String,
        /// What the ONU did.
        observed: String,
    },
    /// The check could not run.
    Skip {
        /// Why.
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

/// The suite's results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The ONU, as the caller named it (e.g. `ONU 1 at 127.0.0.1:46001`).
    pub target: String,
    /// Every check that ran, in order.
    pub checks: Vec<Check>,
    /// Checks that passed.
    pub passed: usize,
    /// Checks that failed.
    pub failed: usize,
    /// Checks that could not run.
    pub skipped: usize,
}

impl Report {
    /// The report of `checks` (counted here, so that the counts always agree with the list).
    pub fn new(target: String, checks: Vec<Check>) -> Report {
        let passed = checks.iter().filter(|c| c.verdict == Verdict::Pass).count();
        let failed = checks
            .iter()
            .filter(|c| matches!(c.verdict, Verdict::Fail { .. }))
            .count();
        let skipped = checks.len() - passed - failed;
        Report {
            target,
            checks,
            passed,
            failed,
            skipped,
        }
    }

    /// JUnit XML: one testcase per check.
    pub fn junit(&self) -> String {
        let total: f64 = self.checks.iter().map(|c| c.seconds).sum();
        let mut o = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"omci-lab ONU conformance\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{total:.3}\">\n  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{total:.3}\">\n",
            self.checks.len(),
            self.failed,
            self.skipped,
            xml(&self.target),
            self.checks.len(),
            self.failed,
            self.skipped
        );
        for c in &self.checks {
            o += &format!(
                "    <testcase classname=\"{}\" name=\"{} {}\" time=\"{:.3}\">\n",
                xml(&c.source),
                c.id,
                xml(&c.title),
                c.seconds
            );
            match &c.verdict {
                Verdict::Pass => {}
                Verdict::Fail { expected, observed } => {
                    o += &format!(
                        "      <failure message=\"expected {}; observed {}\">sent: {}</failure>\n",
                        xml(expected),
                        xml(observed),
                        xml(&c.sent)
                    );
                }
                Verdict::Skip { why } => {
                    o += &format!("      <skipped message=\"{}\"/>\n", xml(why));
                }
            }
            o += "    </testcase>\n";
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
            };
            o += &format!(
                "  {word:<4}  {:<7} {}  [{}]{more}\n",
                c.id, c.title, c.source
            );
        }
        o += &format!(
            "{} checks: {} passed, {} failed, {} skipped\n",
            self.checks.len(),
            self.passed,
            self.failed,
            self.skipped
        );
        o
    }
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let check = |id: &'static str, verdict| Check {
            id: id.into(),
            title: "A <rule> & more".into(),
            source: "G.988 9.1.4".into(),
            sent: "Get \"both\"".into(),
            verdict,
            seconds: 0.25,
        };
        Report::new(
            "ONU 1 at 127.0.0.1:46001".into(),
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
            ],
        )
    }

    #[test]
    fn the_counts_follow_the_verdicts() {
        let r = sample();
        assert_eq!((r.passed, r.failed, r.skipped), (1, 1, 1));
    }

    #[test]
    fn json_has_the_verdict_beside_the_check_and_reads_back() {
        let r = sample();
        let text = serde_json::to_string(&r).unwrap();
        assert!(
            text.contains(r#""id":"SWI-02","title":"A <rule> & more","source":"G.988 9.1.4","sent":"Get \"both\"","verdict":"fail","expected":"at most one committed","observed":"two","seconds":0.25"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Report>(&text).unwrap(), r);
    }

    #[test]
    fn junit_escapes_and_has_one_testcase_per_check() {
        let x = sample().junit();
        assert_eq!(x.matches("<testcase ").count(), 3);
        assert_eq!(x.matches("<failure ").count(), 1);
        assert_eq!(x.matches("<skipped ").count(), 1);
        assert!(
            x.contains("name=\"SWI-01 A &lt;rule&gt; &amp; more\""),
            "{x}"
        );
        assert!(x.contains("sent: Get &quot;both&quot;</failure>"), "{x}");
    }

    #[test]
    fn the_table_says_pass_fail_skip_and_counts() {
        let t = sample().table();
        assert!(
            t.starts_with("ONU conformance: ONU 1 at 127.0.0.1:46001\n"),
            "{t}"
        );
        assert!(t.contains("  FAIL  SWI-02  A <rule> & more  [G.988 9.1.4]\n          expected at most one committed\n          observed two\n"), "{t}");
        assert!(
            t.ends_with("3 checks: 1 passed, 1 failed, 1 skipped\n"),
            "{t}"
        );
    }
}
