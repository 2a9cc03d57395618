//! `scenario demo`: the OLT's main job without a scenario file. N ONU processes on V1.0, one
//! new image (V2.0) rolled out to all of them by multicast (or unicast), every flash read back,
//! and a summary: the quickstart scenario with its numbers given on the command line.

use crate::spec::{self, Scenario};

/// What `scenario demo` runs.
#[derive(Clone, Copy, Debug)]
pub struct Demo {
    /// ONU processes (1..=128).
    pub onus: u16,
    /// Multicast (one download for all) or unicast (one per ONU).
    pub multicast: bool,
    /// Payload bytes of the new image.
    pub size: usize,
}

impl Demo {
    /// The scenario the demo runs: every ONU ends upgraded, committed and active on V2.0.
    pub fn scenario(&self) -> Result<Scenario, String> {
        let mode = if self.multicast {
            "multicast"
        } else {
            "unicast"
        };
        let text = format!(
            r#"name = "demo"
description = "{n} ONUs get V2.0 by {mode}: downloaded, verified, activated, committed."

[topology]
onus = {n}
version = "V1.0"

[image]
version = "V2.0"
size = {size}
security_version = 2

[olt]
mode = "{mode}"

[expect]
upgraded = {n}
failed = 0

[[expect.onus]]
onus = "all"
result = "upgraded"
committed = "V2.0"
active = "V2.0"
"#,
            n = self.onus,
            size = self.size,
        );
        spec::parse(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_is_a_valid_scenario_of_its_numbers() {
        let s = Demo {
            onus: 8,
            multicast: false,
            size: 20_000,
        }
        .scenario()
        .unwrap();
        assert_eq!(s.topology.onus.0, 8);
        assert_eq!(s.image.size, 20_000);
        assert_eq!(s.olt.mode, spec::Mode::Unicast);
    }
}
