//! What the observer keeps of the rules broken, in memory that does not grow with how often
//! they are broken: per rule how many times, the first and the last time ([`RuleSummary`]);
//! every violation only when asked ([`Keep::Every`]); and the rules broken for the first time,
//! for the driver to warn of once each.
//!
//! An OLT with a quirk breaks the same rule at every window (a thousand times a megabyte):
//! the summary stays one entry per rule, and the report is written once, at the end
//! (`onu run --check-olt --report FILE`, `--check-olt-all` for the full list).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::{Rule, Violation};

/// How much of what is broken the observer keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Per rule: the count, the first and the last violation. Memory stays constant however
    /// often a rule is broken (`onu run --check-olt`).
    Summary,
    /// The summary, and every violation in order besides (`--check-olt-all`, and the
    /// in-process tests, which look at each).
    Every,
}

/// One rule as the report sums it up: the rule, where it is written, how many times it was
/// broken, and the first and the last of those times.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSummary {
    /// The rule.
    pub rule: Rule,
    /// What happened the first time it was broken.
    pub detail: String,
    /// The OMCI frame that broke it first, hex (empty when time alone broke it).
    pub frame: String,
    /// Where the rule is written ([`Rule::source`]).
    pub source: String,
    /// How many times it was broken.
    pub count: u64,
    /// What happened the last time (the first, when it was broken once).
    pub last_detail: String,
    /// The frame that broke it last, hex.
    pub last_frame: String,
}

/// The rules broken so far.
#[derive(Debug)]
pub(super) struct Tally {
    keep: Keep,
    /// One entry per rule broken, in the order each was first broken (at most one per
    /// [`Rule`]).
    rules: Vec<RuleSummary>,
    /// With [`Keep::Every`]: every violation, in order.
    every: Vec<Violation>,
    /// The first violation of each rule not yet taken by [`Tally::poll_first`].
    first_unread: VecDeque<Violation>,
    /// Every violation counted.
    total: u64,
}

impl Tally {
    pub(super) fn new(keep: Keep) -> Tally {
        Tally {
            keep,
            rules: Vec::new(),
            every: Vec::new(),
            first_unread: VecDeque::new(),
            total: 0,
        }
    }

    pub(super) fn keep(&self) -> Keep {
        self.keep
    }

    /// Counts `v`.
    pub(super) fn record(&mut self, v: Violation) {
        self.total += 1;
        match self.rules.iter_mut().find(|s| s.rule == v.rule) {
            Some(s) => {
                s.count += 1;
                s.last_detail.clone_from(&v.detail);
                s.last_frame.clone_from(&v.frame);
            }
            None => {
                self.rules.push(RuleSummary {
                    rule: v.rule,
                    detail: v.detail.clone(),
                    frame: v.frame.clone(),
                    source: v.rule.source().to_string(),
                    count: 1,
                    last_detail: v.detail.clone(),
                    last_frame: v.frame.clone(),
                });
                self.first_unread.push_back(v.clone());
            }
        }
        if self.keep == Keep::Every {
            self.every.push(v);
        }
    }

    pub(super) fn summary(&self) -> &[RuleSummary] {
        &self.rules
    }

    pub(super) fn every(&self) -> &[Violation] {
        &self.every
    }

    pub(super) fn total(&self) -> u64 {
        self.total
    }

    pub(super) fn count(&self, rule: Rule) -> u64 {
        self.rules
            .iter()
            .find(|s| s.rule == rule)
            .map_or(0, |s| s.count)
    }

    pub(super) fn poll_first(&mut self) -> Option<Violation> {
        self.first_unread.pop_front()
    }
}
